// @ts-check
// Record, replay and download what was played (notes and the sustain pedal): as a Standard MIDI
// File, or as sound (WAV), rendered offline with the same piano, layers and pedal (render.js).
// Replay plays that rendering in the page.

import { Recorder, writeMidiFile } from './midi_file.js';
import { encodeWav, renderRecording, soundSpans } from './render.js';

/** @param {string} sel  @returns {HTMLElement} */
const $ = (sel) => document.querySelector(sel);

export class RecordingControls {
  /** @param {import('./audio.js').Piano} piano  what renders the sound (its parts, its context) */
  constructor(piano) {
    this.piano = piano;
    this.recorder = new Recorder();
    this.notes = null; // the last finished recording
    this.controls = [];
    this.duration = 0; // seconds, of the last recording
    this.rendered = null; // Promise<AudioBuffer> of the last recording, made once when first asked
    this.replaying = null; // the source replaying it
    this.button = $('#record');
    this.download = /** @type {HTMLButtonElement} */ ($('#download'));
    this.audio = /** @type {HTMLButtonElement} */ ($('#download-audio'));
    this.replay = /** @type {HTMLButtonElement} */ ($('#replay'));
    this.info = $('#record-info');
    this.button.addEventListener('click', () => this.toggle());
    this.download.addEventListener('click', () => this.save());
    this.audio.addEventListener('click', () => this.saveAudio());
    this.replay.addEventListener('click', () => this.toggleReplay());
  }

  // Player listener: the recording hears key-downs, key-ups and the pedal.
  noteOn(e) { this.recorder.noteOn(e.time, e.pitch, e.velocity); }

  noteOff(e) { this.recorder.noteOff(e.time, e.pitch); }

  pedal(down, time) { this.recorder.pedal(time, down); }

  toggle() {
    const now = performance.now() / 1000;
    if (this.recorder.recording) {
      this.duration = now - this.recorder.t0;
      this.notes = this.recorder.stop(now);
      this.controls = this.recorder.controls;
      this.rendered = null;
      for (const el of [this.audio, this.replay]) el.disabled = this.notes.length === 0;
      this.button.classList.remove('recording');
      this.button.setAttribute('aria-pressed', 'false');
      this.button.querySelector('.text').textContent = 'Record';
      this.download.disabled = this.notes.length === 0;
      this.info.textContent = `${this.notes.length} notes recorded`;
    } else {
      this.stopReplay();
      this.recorder.start(now);
      this.button.classList.add('recording');
      this.button.setAttribute('aria-pressed', 'true');
      this.button.querySelector('.text').textContent = 'Stop';
      this.info.textContent = 'recording…';
    }
  }

  /** The last recording as .mid bytes (null if none). */
  midiFile() {
    return this.notes ? writeMidiFile(this.notes, { controls: this.controls }) : null;
  }

  save() {
    if (!this.notes || !this.notes.length) return;
    offer(new Blob([this.midiFile()], { type: 'audio/midi' }), 'mid');
  }

  /** The last recording as sound: an AudioBuffer (rendered once), or null if there is none. */
  render() {
    if (!this.notes || !this.notes.length) return null;
    if (!this.rendered) {
      this.rendered = renderRecording(this.piano, soundSpans(this.notes, this.controls, this.duration), this.duration);
      this.rendered.catch(() => { this.rendered = null; });
    }
    return this.rendered;
  }

  /** The last recording as .wav bytes (null if none). */
  async wavFile() {
    const buffer = await this.render();
    if (!buffer) return null;
    return encodeWav(Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c)), buffer.sampleRate);
  }

  async saveAudio() {
    this.info.textContent = 'rendering the audio…';
    try {
      const wav = await this.wavFile();
      if (wav) offer(new Blob([wav], { type: 'audio/wav' }), 'wav');
      this.info.textContent = `${this.notes.length} notes recorded`;
    } catch (e) {
      this.info.textContent = `could not render the audio: ${e.message}`;
    }
  }

  async toggleReplay() {
    if (this.replaying) { this.stopReplay(); return; }
    const buffer = await this.render();
    if (!buffer || this.recorder.recording) return;
    const ctx = this.piano.ctx, src = ctx.createBufferSource();
    this.piano.resume();
    src.buffer = buffer;
    src.connect(ctx.destination); // rendered through the piano's compressor already
    src.onended = () => { if (this.replaying === src) this.stopReplay(); };
    src.start();
    this.replaying = src;
    this.replay.setAttribute('aria-pressed', 'true');
    this.replay.querySelector('.text').textContent = 'Stop';
  }

  stopReplay() {
    const src = this.replaying;
    this.replaying = null;
    if (src) {
      src.onended = null;
      try { src.stop(); } catch { /* ended */ }
      src.disconnect();
    }
    this.replay.setAttribute('aria-pressed', 'false');
    this.replay.querySelector('.text').textContent = 'Replay';
  }
}

/** Offer `blob` as a download named pianogenie-<date>.<ext>. */
function offer(blob, ext) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `pianogenie-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.${ext}`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
