// When a page must reload for the service worker that took over (no DOM, no worker): a page knows
// its build; a worker of another build, or one that does not say, makes it stale.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { staleUnder } from '../src/pwa.js';

test('a page of one build under a worker of another (or a silent one) must reload; under its own, not', () => {
  assert.equal(staleUnder('a', 'b', true), true, 'served offline as build a, the worker of build b took over');
  assert.equal(staleUnder('a', 'a', false), false, 'the worker of its own build, whatever served it');
  assert.equal(staleUnder('a', null, true), true, 'a worker that does not say its build');
  assert.equal(staleUnder(null, 'b', false), true, 'an unbuilt page served by a silent (older) worker');
  assert.equal(staleUnder(null, 'b', true), false, 'an unbuilt page served by a worker that answered: network-first');
});
