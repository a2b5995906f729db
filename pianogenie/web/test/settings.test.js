// The settings store (no DOM): what is read back is validated, anything else is the default.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SettingsStore, STORAGE_KEY, validate } from '../src/settings.js';

class MemoryStorage {
  constructor(init = {}) { this.m = new Map(Object.entries(init)); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

test('validate: booleans, bounded numbers on their step, bounded strings among their choices', () => {
  const num = { type: 'number', min: 0, max: 1, step: 0.05 };
  assert.equal(validate(0.6, num), 0.6);
  assert.equal(validate(0.61, num), 0.6, 'snapped to the step');
  for (const bad of [7, -0.1, NaN, Infinity, '0.5', null, undefined, {}]) assert.equal(validate(bad, num), undefined, String(bad));
  assert.equal(validate(true, { type: 'bool' }), true);
  for (const bad of ['true', 1, null]) assert.equal(validate(bad, { type: 'bool' }), undefined);
  const choice = { type: 'string', choices: ['a', 'b'] };
  assert.equal(validate('b', choice), 'b');
  for (const bad of ['c', 1, ['a']]) assert.equal(validate(bad, choice), undefined);
  assert.equal(validate('x'.repeat(201), { type: 'string' }), undefined, 'bounded');
});

test('the store reads back its own record, and nothing else', () => {
  const storage = new MemoryStorage();
  const a = new SettingsStore(storage);
  a.set('temperature', 0.6);
  a.set('lookAhead', true);
  const b = new SettingsStore(storage);
  assert.equal(b.get('temperature', { type: 'number', min: 0, max: 1 }, 0.25), 0.6);
  assert.equal(b.get('lookAhead', { type: 'bool' }, false), true);
  assert.equal(b.get('missing', { type: 'bool' }, false), false);
  for (const text of ['{not json', '[]', 'null', '"x"', JSON.stringify({ format: 0, values: { a: 1 } }),
    JSON.stringify({ format: 1, values: [1] }), JSON.stringify({ format: 1, values: { a: 'x'.repeat(30000) } })]) {
    const s = new SettingsStore(new MemoryStorage({ [STORAGE_KEY]: text }));
    assert.deepEqual(s.values, {}, text.slice(0, 40));
  }
  b.clear();
  assert.equal(storage.getItem(STORAGE_KEY), null);
  const blocked = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('denied'); }, removeItem() { throw new Error('denied'); } };
  const c = new SettingsStore(blocked);
  c.set('x', true); // storage blocked: kept for the visit
  assert.equal(c.get('x', { type: 'bool' }, false), true);
  c.clear();
});
