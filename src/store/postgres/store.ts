import { conflict, preconditionFailed } from '../../errors';
import type {
  HistoryPage,
  HistoryQuery,
  ResourceLike,
  SearchQuery,
  Store,
  StoredVersion,
  StoreReader,
  StoreWriter,
  WriteOptions,
} from '../api';
import type { Driver, Queryable } from './driver';

interface CurrentRow {
  version_id: number;
  last_updated: Date | string;
  deleted: boolean;
  content: string | null;
}

interface VersionRow extends CurrentRow {
  seq: string;
  resource_type: string;
  id: string;
  method: StoredVersion['method'];
}

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();

function fromRow(resourceType: string, id: string, row: CurrentRow, method?: StoredVersion['method']): StoredVersion {
  return {
    resourceType,
    id,
    versionId: String(row.version_id),
    lastUpdated: iso(row.last_updated),
    deleted: row.deleted,
    method: method ?? (row.deleted ? 'DELETE' : 'PUT'),
    json: row.content ?? undefined,
  };
}

class PgReader implements StoreReader {
  constructor(protected readonly q: Queryable) {}

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const rows = await this.q.query<CurrentRow>(
      'SELECT version_id, last_updated, deleted, content FROM resource_current WHERE resource_type = $1 AND id = $2',
      [resourceType, id],
    );
    return rows[0] && fromRow(resourceType, id, rows[0]);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    const vid = Number(versionId);
    if (!Number.isSafeInteger(vid) || vid < 1) {
      return undefined;
    }
    const rows = await this.q.query<VersionRow>(
      `SELECT version_id, last_updated, deleted, content, method FROM resource_version
       WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
      [resourceType, id, vid],
    );
    return rows[0] && fromRow(resourceType, id, rows[0], rows[0].method);
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown): void => {
      params.push(value);
      where.push(clause.replace('?', '$' + params.length));
    };
    if (query.resourceType) {
      add('resource_type = ?', query.resourceType);
    }
    if (query.id) {
      add('id = ?', query.id);
    }
    if (query.since) {
      add('last_updated >= ?', query.since);
    }
    const filter = where.length ? 'WHERE ' + where.join(' AND ') : '';
    const totalRows = await this.q.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM resource_version ${filter}`,
      params,
    );
    if (query.cursor) {
      add('seq < ?', query.cursor);
    }
    const pageFilter = where.length ? 'WHERE ' + where.join(' AND ') : '';
    params.push(query.count + 1);
    const rows = await this.q.query<VersionRow>(
      `SELECT seq, resource_type, id, version_id, last_updated, deleted, content, method FROM resource_version
       ${pageFilter} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, query.count);
    return {
      versions: page.map((r) => fromRow(r.resource_type, r.id, r, r.method)),
      next: rows.length > query.count && page.length > 0 ? String(page[page.length - 1].seq) : undefined,
      total: Number(totalRows[0].n),
    };
  }


  async search(query: SearchQuery): Promise<StoredVersion[]> {
    const params: unknown[] = [query.resourceType];
    const where = ['resource_type = $1', 'NOT deleted'];
    for (const f of query.filters) {
      where.push('(' + filterSql(f, params) + ')');
    }
    params.push(query.count);
    const rows = await this.q.query<CurrentRow & { id: string }>(
      `SELECT id, version_id, last_updated, deleted, content FROM resource_current
       WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => fromRow(query.resourceType, r.id, r));
  }
}

/** One filter as SQL over resource_current, with its values appended to `params`. */
function filterSql(f: SearchQuery['filters'][number], params: unknown[]): string {
  const p = (v: unknown): string => {
    params.push(v);
    return '$' + params.length;
  };
  switch (f.kind) {
    case 'id':
      return `id = ANY(${p(f.ids)})`;
    case 'identifier':
      return f.values
        .map((v) => {
          const ident: Record<string, string> = { value: v.value };
          if (v.system) {
            ident.system = v.system;
          }
          const contains = `content::jsonb @> ${p(JSON.stringify({ identifier: [ident] }))}::jsonb`;
          // `|value`: the identifier must have no system at all.
          return v.system === null
            ? `EXISTS (SELECT 1 FROM jsonb_array_elements(content::jsonb->'identifier') i
                WHERE i->>'value' = ${p(v.value)} AND NOT i ? 'system')`
            : contains;
        })
        .join(' OR ');
    case 'element':
      if (!/^[a-z][A-Za-z0-9]*$/.test(f.element)) {
        throw new Error(`Not an element name: ${f.element}`);
      }
      return `(content::jsonb->>'${f.element}') = ANY(${p(f.values)})`;
  }
}

interface PendingCreate {
  resourceType: string;
  id: string;
  lastUpdated: string;
  json: string;
  method: string;
}

class PgWriter extends PgReader implements StoreWriter {
  readonly store: Store;
  private pending: PendingCreate[] = [];

  constructor(q: Queryable, kind: Store['kind']) {
    super(q);
    // Nested transactions (entries of a transaction Bundle) join this one.
    const joined: Store = {
      kind,
      read: (t, i) => this.read(t, i),
      vread: (t, i, v) => this.vread(t, i, v),
      history: (h) => this.history(h),
      search: (q) => this.search(q),
      transaction: (fn) => fn(this),
      close: async () => undefined,
    };
    this.store = joined;
  }

  /**
   * Creates are queued and written together (one statement for many rows) just before the next
   * read or other write in this transaction, or at commit. A transaction Bundle of 300 creates is
   * then one round trip instead of 300.
   */
  async create(resource: ResourceLike, options: WriteOptions = {}): Promise<StoredVersion> {
    const id = resource.id as string;
    const { json, lastUpdated } = stamp(resource, 1);
    const method = options.method ?? 'POST';
    this.pending.push({ resourceType: resource.resourceType, id, lastUpdated, json, method });
    return { resourceType: resource.resourceType, id, versionId: '1', lastUpdated, deleted: false, method, json };
  }

  /** Writes the queued creates. A create whose id already exists fails the transaction (409). */
  async flush(): Promise<void> {
    const clash = await this.writePending();
    if (clash) {
      throw conflict(`${clash.resourceType}/${clash.id} already exists`);
    }
  }

  /** Writes the queued creates; false when one of them already existed (and was not written). */
  private async flushInserted(): Promise<boolean> {
    return (await this.writePending()) === undefined;
  }

  /** Inserts the queued creates; returns the first one whose id already existed, if any. */
  private async writePending(): Promise<PendingCreate | undefined> {
    if (this.pending.length === 0) {
      return undefined;
    }
    const rows = this.pending;
    this.pending = [];
    const inserted = await this.q.query<{ id: string }>(
      `WITH r AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
           WITH ORDINALITY AS t(resource_type, id, last_updated, content, method, ord)
       ),
       c AS (
         INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
         SELECT resource_type, id, 1, last_updated, false, content FROM r ORDER BY ord
         ON CONFLICT DO NOTHING RETURNING resource_type, id
       )
       INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, method, content)
       SELECT r.resource_type, r.id, 1, r.last_updated, false, r.method, r.content
       FROM r JOIN c ON c.resource_type = r.resource_type AND c.id = r.id ORDER BY r.ord
       RETURNING id`,
      [
        rows.map((r) => r.resourceType),
        rows.map((r) => r.id),
        rows.map((r) => r.lastUpdated),
        rows.map((r) => r.json),
        rows.map((r) => r.method),
      ],
    );
    if (inserted.length !== rows.length) {
      const written = new Set(inserted.map((r) => r.id));
      return rows.find((r) => !written.has(r.id)) ?? rows[0];
    }
    return undefined;
  }

  override async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    await this.flush();
    return super.read(resourceType, id);
  }

  override async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    await this.flush();
    return super.vread(resourceType, id, versionId);
  }

  override async history(query: HistoryQuery): Promise<HistoryPage> {
    await this.flush();
    return super.history(query);
  }

  override async search(query: SearchQuery): Promise<StoredVersion[]> {
    await this.flush();
    return super.search(query);
  }

  async update(
    resource: ResourceLike,
    options: WriteOptions = {},
  ): Promise<{ version: StoredVersion; created: boolean }> {
    const id = resource.id as string;
    let current = await this.lockCurrent(resource.resourceType, id);
    if (!current) {
      if (options.ifMatch !== undefined) {
        throw preconditionFailed(`${resource.resourceType}/${id} does not exist, so If-Match cannot match`);
      }
      const version = await this.create(resource, { method: options.method ?? 'PUT' });
      const inserted = await this.flushInserted();
      if (inserted) {
        return { version, created: true };
      }
      // Another writer created it between our lock attempt and our insert (the insert waited for
      // its commit): carry on as an ordinary update of what it wrote.
      current = await this.lockCurrent(resource.resourceType, id);
      if (!current) {
        throw conflict(`${resource.resourceType}/${id} changed concurrently; retry the update`);
      }
    }
    checkIfMatch(resource.resourceType, id, current.version_id, options.ifMatch);
    const versionId = current.version_id + 1;
    const { json, lastUpdated } = stamp(resource, versionId);
    await this.writeVersion(resource.resourceType, id, versionId, lastUpdated, false, options.method ?? 'PUT', json);
    const method = options.method ?? 'PUT';
    return {
      version: { resourceType: resource.resourceType, id, versionId: String(versionId), lastUpdated, deleted: false, method, json },
      created: false,
    };
  }

  async delete(resourceType: string, id: string, options: WriteOptions = {}): Promise<StoredVersion | undefined> {
    const current = await this.lockCurrent(resourceType, id);
    if (!current || current.deleted) {
      if (options.ifMatch !== undefined && current) {
        checkIfMatch(resourceType, id, current.version_id, options.ifMatch);
      }
      return undefined;
    }
    checkIfMatch(resourceType, id, current.version_id, options.ifMatch);
    const versionId = current.version_id + 1;
    const lastUpdated = new Date().toISOString();
    await this.writeVersion(resourceType, id, versionId, lastUpdated, true, 'DELETE', null);
    return { resourceType, id, versionId: String(versionId), lastUpdated, deleted: true, method: 'DELETE' };
  }

  /** Reads the current row and locks it until the transaction ends (serialises concurrent writers). */
  private async lockCurrent(resourceType: string, id: string): Promise<CurrentRow | undefined> {
    await this.flush();
    const rows = await this.q.query<CurrentRow>(
      `SELECT version_id, last_updated, deleted, content FROM resource_current
       WHERE resource_type = $1 AND id = $2 FOR UPDATE`,
      [resourceType, id],
    );
    return rows[0];
  }

  private async writeVersion(
    resourceType: string,
    id: string,
    versionId: number,
    lastUpdated: string,
    deleted: boolean,
    method: string,
    json: string | null,
  ): Promise<void> {
    await this.q.query(
      `WITH c AS (
         UPDATE resource_current SET version_id = $3, last_updated = $4, deleted = $5, content = $7
         WHERE resource_type = $1 AND id = $2 RETURNING 1
       )
       INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, method, content)
       SELECT $1, $2, $3, $4, $5, $6, $7 FROM c`,
      [resourceType, id, versionId, lastUpdated, deleted, method, json],
    );
  }
}

function checkIfMatch(resourceType: string, id: string, current: number, ifMatch: string | undefined): void {
  if (ifMatch !== undefined && ifMatch !== String(current)) {
    throw preconditionFailed(
      `If-Match expected version ${ifMatch} of ${resourceType}/${id}, but the current version is ${current}`,
    );
  }
}

/** Sets meta.versionId and meta.lastUpdated and serialises the resource as it will be served. */
function stamp(resource: ResourceLike, versionId: number): { json: string; lastUpdated: string } {
  const lastUpdated = new Date().toISOString();
  const { resourceType, id, meta, ...rest } = resource;
  // resourceType and id first, then meta: the order people expect to read.
  const stamped = {
    resourceType,
    id,
    meta: { ...(meta ?? {}), versionId: String(versionId), lastUpdated },
    ...rest,
  };
  return { json: JSON.stringify(stamped), lastUpdated };
}

/** The PostgreSQL store over either driver. */
export class PgStore extends PgReader implements Store {
  readonly kind: Store['kind'];

  constructor(private readonly driver: Driver) {
    super(driver);
    this.kind = driver.kind;
  }

  transaction<T>(fn: (writer: StoreWriter) => Promise<T>): Promise<T> {
    return this.driver.transaction(async (q) => {
      const writer = new PgWriter(q, this.kind);
      const result = await fn(writer);
      await writer.flush();
      return result;
    });
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
