// @ts-check
// Note trails: each note rises above the keyboard as a bar in its button's colour, growing while it
// is held and floating up once released (the 2018 demo's signature). Drawn on one canvas from a
// fixed pool of trails: nothing is added to the DOM and a press only writes one pool slot; all the
// drawing happens in animation frames, which run only while a trail is on screen. Louder notes
// draw wider and brighter trails.

const POOL = 96; // trails on screen at most (the oldest is reused)
const SPEED = 90; // CSS px per second

/** How a note of MIDI velocity `v` looks: its share of the key's width and its opacity (louder =
 * wider and brighter; a note without a velocity looks like a firm one). */
export function trailLook(v = 100) {
  const u = Math.min(127, Math.max(1, v)) / 127;
  return { width: 0.35 + 0.65 * u, alpha: 0.4 + 0.6 * u };
}

export class Trails {
  /** @param {HTMLCanvasElement} canvas  sized by CSS, sitting right above the keyboard */
  constructor(canvas, keyboard) {
    this.canvas = canvas;
    this.keyboard = keyboard;
    this.ctx = canvas.getContext('2d');
    this.pool = Array.from({ length: POOL }, () => ({ key: 0, color: '', t0: 0, t1: 0, live: false, held: false, width: 1, alpha: 1 }));
    this.next = 0;
    this.enabled = true;
    this.frame = 0; // pending animation frame, 0 = none
    this.frames = 0; // frames drawn (for tests)
    this.draw = this.draw.bind(this);
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    this.w = this.canvas.clientWidth;
    this.h = this.canvas.clientHeight;
    this.canvas.width = Math.round(this.w * dpr);
    this.canvas.height = Math.round(this.h * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this._schedule();
  }

  setEnabled(on) {
    this.enabled = on;
    this.canvas.style.visibility = on ? '' : 'hidden'; // keeps its space: nothing moves
    if (!on) this.clear();
  }

  noteOn(key, color, velocity) {
    if (!this.enabled) return;
    const t = this.pool[this.next];
    this.next = (this.next + 1) % POOL;
    Object.assign(t, { key, color, t0: performance.now(), t1: 0, live: true, held: true }, trailLook(velocity));
    this._schedule();
  }

  noteOff(key) {
    for (const t of this.pool) {
      if (t.live && t.held && t.key === key) {
        t.held = false;
        t.t1 = performance.now();
      }
    }
  }

  clear() {
    for (const t of this.pool) t.live = false;
    this.ctx.clearRect(0, 0, this.w, this.h);
  }

  _schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(this.draw);
  }

  draw(now) {
    this.frame = 0;
    const { ctx, w, h } = this;
    ctx.clearRect(0, 0, w, h);
    let live = 0;
    for (const t of this.pool) {
      if (!t.live) continue;
      const top = h - (Math.max(0, now - t.t0) / 1000) * SPEED;
      const bottom = t.held ? h : h - (Math.max(0, now - t.t1) / 1000) * SPEED;
      if (bottom < 0) {
        t.live = false;
        continue;
      }
      live++;
      const { x, w: kw } = this.keyboard.keyX(t.key);
      if (x + kw < 0 || x > w) continue;
      ctx.globalAlpha = t.alpha * Math.max(0.15, Math.min(1, bottom / h + 0.3));
      ctx.fillStyle = t.color;
      const tw = Math.max(2, (kw - 2) * t.width);
      ctx.fillRect(x + (kw - tw) / 2, Math.max(0, top), tw, bottom - Math.max(0, top));
    }
    ctx.globalAlpha = 1;
    this.frames++;
    if (live) this._schedule();
  }
}
