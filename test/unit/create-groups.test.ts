/**
 * Group commit of plain creates (src/store/postgres/create-groups.ts): a create that finds nothing
 * in flight goes at once; those arriving meanwhile share the next statement; each caller learns
 * about its own rows only, and a failing group fails only the caller whose rows fail alone.
 */
import { CreateGroups, type GroupRow, keyOf } from '../../src/store/postgres/create-groups';

interface Row extends GroupRow {
  bad?: boolean;
}

const row = (id: string, extra: Partial<Row> = {}): Row => ({ resourceType: 'Patient', id, ...extra });

/** A fake statement: answers on a later turn; `taken` ids are skipped, a `bad` row fails it. */
function fakeSend(taken: Set<string> = new Set()) {
  const sent: string[][] = [];
  const send = (rows: Row[]): Promise<Set<string>> => {
    sent.push(rows.map((r) => r.id));
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        if (rows.some((r) => r.bad)) {
          reject(new Error(`statement failed on ${rows.find((r) => r.bad)?.id}`));
          return;
        }
        resolve(new Set(rows.filter((r) => !taken.has(r.id)).map(keyOf)));
      }),
    );
  };
  return { sent, send };
}

describe('CreateGroups', () => {
  test('a lone create is sent at once, and those that arrive while it runs share one statement', async () => {
    const { sent, send } = fakeSend();
    const groups = new CreateGroups<Row>(send, 200);
    const first = groups.write([row('a')]);
    expect(sent).toEqual([['a']]); // sent before anything else happened
    const rest = [groups.write([row('b')]), groups.write([row('c'), row('d')]), groups.write([row('e')])];
    await expect(first).resolves.toBeUndefined();
    await expect(Promise.all(rest)).resolves.toEqual([undefined, undefined, undefined]);
    expect(sent).toEqual([['a'], ['b', 'c', 'd', 'e']]);
  });

  test('a taken id fails its own caller only', async () => {
    const { sent, send } = fakeSend(new Set(['taken']));
    const groups = new CreateGroups<Row>(send, 200);
    const first = groups.write([row('x')]);
    const mine = groups.write([row('y'), row('taken')]);
    const other = groups.write([row('z')]);
    await first;
    await expect(mine).resolves.toEqual(row('taken'));
    await expect(other).resolves.toBeUndefined();
    expect(sent).toEqual([['x'], ['y', 'taken', 'z']]);
  });

  test('the same key from two callers never shares a statement (the answer could not say whose it was)', async () => {
    const { sent, send } = fakeSend();
    const groups = new CreateGroups<Row>(send, 200);
    const first = groups.write([row('x')]);
    const a = groups.write([row('dup')]);
    const b = groups.write([row('dup')]);
    const c = groups.write([row('w')]);
    await Promise.all([first, a, b, c]);
    expect(sent).toEqual([['x'], ['dup'], ['dup', 'w']]);
    // The same id of another type is another key.
    const d = groups.write([row('k')]);
    const e = groups.write([{ resourceType: 'Observation', id: 'k' }]);
    await Promise.all([d, e]);
    expect(sent.slice(3)).toEqual([['k'], ['k']]); // d alone (nothing in flight), then e
  });

  test('a failing group is sent again caller by caller: only the bad caller fails', async () => {
    const { sent, send } = fakeSend();
    const groups = new CreateGroups<Row>(send, 200);
    const first = groups.write([row('a')]);
    const good1 = groups.write([row('b')]);
    const bad = groups.write([row('c'), row('bad', { bad: true })]);
    const good2 = groups.write([row('d')]);
    await first;
    await expect(good1).resolves.toBeUndefined();
    await expect(bad).rejects.toThrow('statement failed on bad');
    await expect(good2).resolves.toBeUndefined();
    expect(sent).toEqual([['a'], ['b', 'c', 'bad', 'd'], ['b'], ['c', 'bad'], ['d']]);
    // The queue keeps working after a failure.
    await expect(groups.write([row('e')])).resolves.toBeUndefined();
  });

  test('a group stops at maxRows without splitting a caller', async () => {
    const { sent, send } = fakeSend();
    const groups = new CreateGroups<Row>(send, 3);
    const all = [
      groups.write([row('a')]),
      groups.write([row('b'), row('c')]),
      groups.write([row('d')]),
      groups.write([row('e'), row('f'), row('g'), row('h')]), // more than maxRows: alone
      groups.write([row('i')]),
    ];
    await Promise.all(all);
    expect(sent).toEqual([['a'], ['b', 'c', 'd'], ['e', 'f', 'g', 'h'], ['i']]);
  });
});
