// The page: inputs (keys, pointer/touch, MIDI) -> session -> sound, MIDI out, keyboard lights,
// recording. The model is loaded by model.js and decoded by decoder.js.

import { Piano } from './audio.js';
import { MidiIO } from './midi_io.js';
import { Recorder, writeMidiFile } from './midi_file.js';
import { fetchModel } from './model.js';
import { Session } from './session.js';

const MODEL_URL = 'model/'; // relative: the site works under any sub-path
const SAMPLES_URL = 'vendor/piano/';
const COLORS = ['#EE2B29', '#ff9800', '#ffff00', '#c6ff00', '#00e5ff', '#2979ff', '#651fff', '#d500f9'];
// Two rows of keys: the digits, and the home row (left hand A S D F, right hand J K L ;).
const KEY_CODES = [
  ['Digit1', 'KeyA'], ['Digit2', 'KeyS'], ['Digit3', 'KeyD'], ['Digit4', 'KeyF'],
  ['Digit5', 'KeyJ'], ['Digit6', 'KeyK'], ['Digit7', 'KeyL'], ['Digit8', 'Semicolon'],
];
const KEY_LABELS = [['1', 'A'], ['2', 'S'], ['3', 'D'], ['4', 'F'], ['5', 'J'], ['6', 'K'], ['7', 'L'], ['8', ';']];
const VELOCITY = 90; // keyboard and pointer presses have no velocity of their own
const WARMUP_PRESSES = 200;
const LATENCY_WINDOW = 200;

const $ = (sel) => document.querySelector(sel);

// Test and debugging handle: what was played, and the session itself.
const handle = { ready: false, error: null, played: [], session: null, config: null, kernel: null, latencies: [] };
window.pianoGenie = handle;

function buildKeyboard(el, lowestPitch, numKeys) {
  const keys = [];
  const isBlack = (p) => [1, 3, 6, 8, 10].includes(p % 12);
  const numWhite = Array.from({ length: numKeys }, (_, k) => lowestPitch + k).filter((p) => !isBlack(p)).length;
  const whiteWidth = 100 / numWhite;
  let white = 0;
  for (let k = 0; k < numKeys; k++) {
    const pitch = lowestPitch + k, black = isBlack(pitch);
    const key = document.createElement('div');
    key.className = black ? 'key black' : 'key white';
    key.dataset.key = String(k);
    if (black) {
      key.style.left = `${white * whiteWidth - whiteWidth * 0.3}%`;
      key.style.width = `${whiteWidth * 0.6}%`;
    } else {
      key.style.left = `${white * whiteWidth}%`;
      key.style.width = `${whiteWidth}%`;
      if (pitch % 12 === 0) key.dataset.label = `C${pitch / 12 - 1}`;
      white++;
    }
    keys.push(key);
  }
  // Black keys after white ones, so they are drawn on top.
  keys.filter((k) => k.classList.contains('white')).forEach((k) => el.appendChild(k));
  keys.filter((k) => k.classList.contains('black')).forEach((k) => el.appendChild(k));
  return keys.sort((a, b) => a.dataset.key - b.dataset.key);
}

function buildButtons(el, numButtons) {
  return Array.from({ length: numButtons }, (_, b) => {
    const button = document.createElement('button');
    button.className = 'genie-button';
    button.type = 'button';
    button.dataset.button = String(b);
    button.style.setProperty('--color', COLORS[b % COLORS.length]);
    const labels = KEY_LABELS[b] || [String(b + 1)];
    button.innerHTML = `<span class="label">${labels[0]}</span><span class="label2">${labels[1] || ''}</span>`;
    button.setAttribute('aria-label', `button ${b + 1}`);
    el.appendChild(button);
    return button;
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

async function main() {
  const status = $('#status');
  const model = await fetchModel(MODEL_URL);
  const { config, decoder } = model;
  const session = new Session(decoder, config);
  Object.assign(handle, { session, config, kernel: decoder.kernel });

  // Warm up (JIT-compile the decoder loops) so the first real press is as fast as the rest.
  for (let i = 0; i < WARMUP_PRESSES; i++) session.press(i * 0.1, i % config.numButtons, 0.25);
  session.reset();

  const keyEls = buildKeyboard($('#keyboard'), config.lowestPitch, config.numKeys);
  const buttonEls = buildButtons($('#buttons'), config.numButtons);
  // Samples load now (an AudioContext may be made before a gesture; it plays after one).
  const piano = new Piano(SAMPLES_URL);
  piano.load().then((n) => { $('#sound').textContent = n ? 'sampled piano' : 'synth'; });
  const recorder = new Recorder();
  let recording = null; // the last finished recording (notes)
  const temperatureEl = $('#temperature');
  const holder = new Map(); // button -> the input source holding it now (key code, pointer, MIDI note)
  const sourceButton = new Map(); // input source -> button
  const lit = new Map(); // key -> how many buttons are sounding it


  const midi = new MidiIO({
    numButtons: config.numButtons,
    onButtonDown: (b, velocity, source) => buttonDown(b, source, velocity),
    onButtonUp: (source) => buttonUp(source),
    onChange: () => renderMidi(),
  });

  function light(key, button, on) {
    const n = (lit.get(key) || 0) + (on ? 1 : -1);
    lit.set(key, Math.max(0, n));
    const el = keyEls[key];
    if (on) el.style.setProperty('--color', COLORS[button % COLORS.length]);
    el.classList.toggle('on', n > 0);
  }

  function noteOff(button, key) {
    const pitch = key + config.lowestPitch, now = performance.now() / 1000;
    piano.noteOff(pitch);
    midi.noteOff(pitch);
    recorder.noteOff(now, pitch);
    light(key, button, false);
    handle.played.push({ type: 'off', button, key, pitch, time: now });
  }

  function buttonDown(button, source, velocity = VELOCITY) {
    if (sourceButton.has(source)) return; // auto-repeat or a duplicate event
    piano.resume();
    // A button pressed again (from another input) ends the note it was sounding.
    const previous = session.release(button);
    if (previous !== null) noteOff(button, previous);
    holder.set(button, source);
    sourceButton.set(source, button);
    buttonEls[button].classList.add('down');

    const now = performance.now() / 1000;
    const t0 = performance.now();
    const key = session.press(now, button, Number(temperatureEl.value));
    const latency = performance.now() - t0;

    const pitch = key + config.lowestPitch;
    piano.noteOn(pitch, velocity);
    midi.noteOn(pitch, velocity);
    recorder.noteOn(now, pitch, velocity);
    light(key, button, true);
    handle.played.push({ type: 'on', button, key, pitch, velocity, time: now, latencyMs: latency });
    handle.latencies.push(latency);
    if (handle.latencies.length > LATENCY_WINDOW) handle.latencies.shift();
    $('#latency').textContent = `${latency.toFixed(2)} ms (median ${median(handle.latencies).toFixed(2)} ms)`;
  }

  function buttonUp(source) {
    const button = sourceButton.get(source);
    if (button === undefined) return;
    sourceButton.delete(source);
    if (holder.get(button) !== source) return; // superseded by a later press of the same button
    holder.delete(button);
    buttonEls[button].classList.remove('down');
    const key = session.release(button);
    if (key !== null) noteOff(button, key);
  }

  function releaseAll() {
    for (const source of [...sourceButton.keys()]) buttonUp(source);
  }

  // Computer keyboard.
  const codeToButton = new Map();
  KEY_CODES.slice(0, config.numButtons).forEach((codes, b) => codes.forEach((c) => codeToButton.set(c, b)));
  window.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !codeToButton.has(e.code)) return;
    e.preventDefault();
    if (!e.repeat) buttonDown(codeToButton.get(e.code), `key:${e.code}`);
  });
  window.addEventListener('keyup', (e) => {
    if (codeToButton.has(e.code)) buttonUp(`key:${e.code}`);
  });
  window.addEventListener('blur', releaseAll); // keys released while away would stick

  // Mouse and multi-touch: one source per pointer.
  buttonEls.forEach((el, b) => {
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      try {
        el.setPointerCapture(e.pointerId); // the release arrives here even if the finger slides off
      } catch { /* a pointer that is already gone: nothing to capture */ }
      buttonDown(b, `pointer:${e.pointerId}`);
    });
    const up = (e) => buttonUp(`pointer:${e.pointerId}`);
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
    el.addEventListener('contextmenu', (e) => e.preventDefault());
  });

  // Controls.
  const showTemperature = () => { $('#temperature-value').textContent = Number(temperatureEl.value).toFixed(2); };
  temperatureEl.addEventListener('input', showTemperature);
  showTemperature();

  $('#reset').addEventListener('click', () => {
    releaseAll();
    session.reset(Date.now());
    piano.allNotesOff();
    midi.allNotesOff();
  });

  const recordEl = $('#record'), downloadEl = $('#download');
  recordEl.addEventListener('click', () => {
    const now = performance.now() / 1000;
    if (recorder.recording) {
      recording = recorder.stop(now);
      recordEl.textContent = '● Record';
      recordEl.classList.remove('recording');
      downloadEl.disabled = recording.length === 0;
      $('#record-info').textContent = `${recording.length} notes recorded`;
    } else {
      recorder.start(now);
      recordEl.textContent = '■ Stop';
      recordEl.classList.add('recording');
      $('#record-info').textContent = 'recording…';
    }
  });
  downloadEl.addEventListener('click', () => {
    if (!recording || !recording.length) return;
    const blob = new Blob([writeMidiFile(recording)], { type: 'audio/midi' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `pianogenie-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.mid`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  handle.midiFile = () => (recording ? writeMidiFile(recording) : null);

  // MIDI in/out.
  const midiButton = $('#midi-connect'), outputEl = $('#midi-output');
  function renderMidi() {
    if (!midi.access) return;
    midiButton.hidden = true;
    const inputs = midi.inputs.map((i) => i.name).join(', ');
    $('#midi-info').textContent = inputs ? `in: ${inputs}` : 'no MIDI input connected';
    outputEl.hidden = false;
    outputEl.replaceChildren(new Option('MIDI out: none', ''),
      ...midi.outputs.map((o) => new Option(`MIDI out: ${o.name}`, o.id, false, o.id === midi.outputId)));
  }
  outputEl.addEventListener('change', () => { midi.allNotesOff(); midi.outputId = outputEl.value; });
  if (!midi.supported) {
    midiButton.hidden = true;
    $('#midi-info').textContent = 'Web MIDI not supported by this browser';
  } else {
    midiButton.addEventListener('click', () => midi.connect().catch((e) => {
      $('#midi-info').textContent = `MIDI unavailable: ${e.message}`;
    }));
    midi.connectIfGranted();
  }

  $('#model-info').textContent = `${config.numLayers}×${config.rnnDim} LSTM, ${config.numButtons} buttons`;
  status.textContent = 'Ready: press 1–8 or A S D F J K L ;';
  document.body.classList.add('ready');
  handle.ready = true;
}

main().catch((e) => {
  handle.error = String(e && e.message ? e.message : e);
  $('#status').textContent = `Could not load the model: ${handle.error}`;
  document.body.classList.add('failed');
  console.error(e);
});
