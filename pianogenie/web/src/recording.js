// Record and download: what was played (notes and the sustain pedal) as a Standard MIDI File.

import { Recorder, writeMidiFile } from './midi_file.js';

const $ = (sel) => document.querySelector(sel);

export class RecordingControls {
  constructor() {
    this.recorder = new Recorder();
    this.notes = null; // the last finished recording
    this.controls = [];
    this.button = $('#record');
    this.download = $('#download');
    this.info = $('#record-info');
    this.button.addEventListener('click', () => this.toggle());
    this.download.addEventListener('click', () => this.save());
  }

  // Player listener: the recording hears key-downs, key-ups and the pedal.
  noteOn(e) { this.recorder.noteOn(e.time, e.pitch, e.velocity); }

  noteOff(e) { this.recorder.noteOff(e.time, e.pitch); }

  pedal(down, time) { this.recorder.pedal(time, down); }

  toggle() {
    const now = performance.now() / 1000;
    if (this.recorder.recording) {
      this.notes = this.recorder.stop(now);
      this.controls = this.recorder.controls;
      this.button.classList.remove('recording');
      this.button.setAttribute('aria-pressed', 'false');
      this.button.querySelector('.text').textContent = 'Record';
      this.download.disabled = this.notes.length === 0;
      this.info.textContent = `${this.notes.length} notes recorded`;
    } else {
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
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([this.midiFile()], { type: 'audio/midi' }));
    a.download = `pianogenie-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.mid`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
}
