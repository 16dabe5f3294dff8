/**
 * inIdOrder (src/store/postgres/store.ts): the database hands projection values over unordered, a
 * resource once per matching key; readers get them in id order, once each, up to the count.
 */
import { inIdOrder } from '../../src/store/postgres/store';

test.each([
  ['already in order', [['a', 1], ['b', 2], ['c', 3]], 10, [1, 2, 3]],
  ['two sorted runs (one per key) with a resource in both', [['a', 1], ['c', 3], ['b', 2], ['c', 3], ['d', 4]], 10, [1, 2, 3, 4]],
  ['reversed', [['c', 3], ['b', 2], ['a', 1]], 10, [1, 2, 3]],
  ['count applies after duplicates are removed', [['b', 2], ['a', 1], ['a', 1], ['c', 3]], 2, [1, 2]],
  ['ids compare by code unit, as written', [['a-2', 'x'], ['A-1', 'y'], ['a.1', 'z']], 10, ['y', 'x', 'z']],
  ['none', [], 10, []],
] as [string, [string, unknown][], number, unknown[]][])('%s', (_name, pairs, count, expected) => {
  expect(inIdOrder(pairs, count)).toEqual(expected);
});
