/** node-postgres's parameter conversion (what its client does to each value before sending it). */
declare module 'pg/lib/utils' {
  export function prepareValue(value: unknown): string | Buffer | null;
}
