// @ts-check
// The page: wires the model, the session and the player to the views, inputs and outputs.
// Each piece lives in its own module: keyboard.js (the 88 keys), buttons.js (the 8 buttons),
// inputs.js (computer keys, pointers), pedal.js, trails.js, controls.js, scale_picker.js,
// recording.js, midi_panel.js (+ midi_io.js), help.js, audio.js + dynamics.js (velocity layers);
// player.js routes notes (no DOM), session.js decodes presses and their velocities (no DOM),
// decoder.js and velocity.js are the maths. model.js reads the weights; genies.js the site's
// models.json (the genie picker: several models, one plays at a time, the choice kept).

import { ButtonsView, buttonColor, COLORS } from './buttons.js';
import { Controls } from './controls.js';
import { LEVELS } from './expression.js';
import { LayeredPiano } from './dynamics.js';
import { HarmonyControl } from './harmony.js';
import { Help } from './help.js';
import { bindKeys, bindPointers } from './inputs.js';
import { KeyboardView } from './keyboard.js';
import { MidiIO } from './midi_io.js';
import { MidiPanel } from './midi_panel.js';
import { chooseGenie, genieSpec, INDEX_URL, parseIndex } from './genies.js';
import { fetchModel, modelFingerprint } from './model.js';
import { PedalView } from './pedal.js';
import { controlled } from './pwa.js';
import { EventLog, Player, RunningMedian } from './player.js';
import { RecordingControls } from './recording.js';
import { ScalePicker } from './scale_picker.js';
import { Session } from './session.js';
import { bindControls, SettingsStore } from './settings.js';
import { Trails } from './trails.js';

const SAMPLES_URL = 'vendor/piano/';
const WARMUP_PRESSES = 200;
const READOUT_MS = 500; // the latency readout changes at most twice a second

/** @param {string} sel  @returns {HTMLElement} */
const $ = (sel) => document.querySelector(sel);
/** A form control: an input or a select. @param {string} sel */
const control = (sel) => /** @type {HTMLInputElement|HTMLSelectElement} */ (document.querySelector(sel));
const storage = () => {
  try {
    return window.localStorage;
  } catch {
    return null; // blocked: settings last the visit
  }
};

// Test and debugging handle. `log` keeps the latest 1000 events (note on/off, sound off, pedal).
const log = new EventLog(1000);
const handle = { ready: false, error: null, log, session: null, config: null, kernel: null, velocityLayers: [],
  samplesLoaded: false };
Object.defineProperty(handle, 'played', { get: () => log.events });
/** @type {Window & {pianoGenie?: typeof handle}} */ (window).pianoGenie = handle;

const help = new Help($('#help'), $('#help-open'));

async function fetchIndex() {
  const response = await fetch(INDEX_URL);
  if (!response.ok) throw new Error(`${INDEX_URL}: HTTP ${response.status}`);
  return parseIndex(await response.json());
}

/** A genie's model, ready to play: its session warmed up (the decoder loops JIT-compiled), so
 * the first real press is as fast as the rest. */
async function loadGenie(genie) {
  const model = await fetchModel(genie.path);
  // Keyboard and pointer presses play the model's velocity (velocity.js); a MIDI controller's its own.
  const session = new Session(model.decoder, model.config, { velocityHead: model.velocityHead });
  for (let i = 0; i < WARMUP_PRESSES; i++) session.press(i * 0.1, i % model.config.numButtons, 0.25);
  for (let i = 0; i < 20; i++) session.lookAhead(i * 0.1);
  session.reset();
  return { ...model, session, genie };
}

async function main() {
  const store = new SettingsStore(storage());
  const index = await fetchIndex();
  let genie = chooseGenie(index, store.get('genie', genieSpec(index), index.default));
  const loaded = await loadGenie(genie);
  const { config, decoder } = loaded;
  let { session, weights } = loaded;

  const keyboard = new KeyboardView($('#keyboard'), config);
  const buttons = new ButtonsView($('#buttons'), config.numButtons);
  const trails = new Trails(/** @type {HTMLCanvasElement} */ ($('#trails')), keyboard);
  // Buttons play at once with the built-in synth; the sampled piano takes over as samples arrive.
  // The rest of the base layer and the soft and loud layers (dynamics.js) load once its first set
  // is in, a note has played and the service worker serves the page (so they are kept offline).
  const piano = new LayeredPiano(SAMPLES_URL);
  let baseLoaded = false, played = false, layersStarted = false;
  const loadLayers = () => {
    if (layersStarted || !baseLoaded || !played) return;
    layersStarted = true;
    controlled().then(() => piano.loadLayers()).then((layers) => {
      handle.velocityLayers = layers;
      if (layers.length) { // the layer count shows where the labels do (wide screens), in the title everywhere
        const extra = Object.assign(document.createElement('span'), {
          className: 'lbl', textContent: `, ${layers.length + 1} velocity layers` });
        sound.append(extra);
        sound.title = `sampled piano, ${layers.length + 1} velocity layers`;
      }
      handle.samplesLoaded = true;
    });
  };
  const sound = $('#sound');
  sound.textContent = `synth (piano 0/${piano.sampleCount})`;
  document.body.classList.add('loading-samples');
  piano.load((n, total) => { if (n < total) sound.textContent = `synth (piano ${n}/${total})`; })
    .then((n) => {
      sound.textContent = n ? 'sampled piano' : 'synth';
      document.body.classList.remove('loading-samples');
      baseLoaded = n > 0;
      loadLayers();
    });

  let lookAheadOn = false, player = null, settings = null;
  const controls = new Controls({
    reset: () => player.reset(),
    lookAhead: (on) => { lookAheadOn = on; showAhead(); },
    trails: (on) => trails.setEnabled(on),
    resetSettings: () => settings.reset(),
    dynamics: () => { showDynamics(); if (player) showAhead(); }, // the level is read at each press
  });
  const scale = new ScalePicker(config, (keys) => {
    keyboard.setAllowed(keys);
    if (player) showAhead();
  });
  // A conditioned genie's harmony (key, chord, style): every press reads it, the scale mask applies on top.
  const harmony = new HarmonyControl({ now: () => performance.now() / 1000, onChange: () => { if (player) showAhead(); } });
  harmony.setModel(decoder.conditions);
  player = new Player(session, config, { temperature: () => controls.temperature, keys: () => scale.keys,
    genieDynamics: () => controls.genieDynamics, dynamics: () => controls.dynamics, conditions: () => harmony.ids() });
  // Look-ahead marks carry the velocity the model would play each button's key at (when it has a head).
  // What a press plays depends on the time since the last one, so the marks are asked again each
  // animation frame (one look-ahead, ~0.3 ms) until they can no longer change (aheadSettlesAt). A
  // frame's marks are on screen from the next frame on: they are computed for then (the frame's
  // timestamp plus one frame, on the player's clock), not for the callback's own moment.
  let aheadFrame = 0, lastFrameTs = 0, frameMs = 1000 / 60;
  const showAhead = (time = player.now()) => {
    if (!lookAheadOn) { keyboard.showAhead([], COLORS); return; }
    handle.aheadAt = time;
    keyboard.showAhead(player.lookAhead(time), COLORS, player.session.aheadVelocities);
    if (!aheadFrame && time < player.aheadSettlesAt) aheadFrame = requestAnimationFrame(aheadTick);
    else if (!aheadFrame) lastFrameTs = 0;
  };
  const aheadTick = (ts) => {
    aheadFrame = 0;
    if (lastFrameTs && ts > lastFrameTs) frameMs = Math.min(Math.max(ts - lastFrameTs, 4), 50); // the display's rate
    lastFrameTs = ts;
    showAhead(player.now() + (ts + frameMs - performance.now()) / 1000);
  };
  const pedal = new PedalView($('#pedal'), player);
  // The footer names the dynamics level while it is not the genie's own.
  const showDynamics = () => {
    const level = controls.dynamics;
    $('#dynamics-info').hidden = level === 0;
    $('#dynamics-level').textContent = LEVELS[level + 3];
  };
  showDynamics();

  // Press -> sound: the decode plus the audio path (the context's buffer and the output device),
  // shown as the median of the latest 64 presses.
  const latency = new RunningMedian(64);
  let readoutPending = 0;
  const readout = () => {
    readoutPending = 0;
    $('#latency').textContent = `${latency.median().toFixed(1)} ms`;
  };
  handle.latency = latency;

  // Listeners, in order: the sound first (it starts in the press's own event), views after.
  player.listen({
    noteOn: (e) => {
      piano.resume();
      piano.noteOn(e.pitch, e.velocity);
      if (!played) { played = true; loadLayers(); }
    },
    soundOff: (e) => piano.noteOff(e.pitch),
    reset: () => piano.allNotesOff(),
  });
  const midi = new MidiIO({
    numButtons: config.numButtons,
    onButtonDown: (b, velocity, source) => player.buttonDown(b, source, velocity),
    onButtonUp: (source) => player.buttonUp(source),
    onPedal: (down, source) => (down ? player.pedalOn(source) : player.pedalOff(source)),
    onChange: () => midiPanel.render(),
    onInputGone: (id) => { player.releaseSources(MidiIO.sourcePrefix(id)); harmony.releaseHeld(); },
    onNote: (pitch, down) => harmony.midiNote(pitch, down),
  });
  const midiPrefs = {
    get output() { return store.get('midiOutput', { type: 'string' }, ''); },
    set output(id) { store.set('midiOutput', id); },
    get connected() { return store.get('midiConnected', { type: 'bool' }, false); },
    set connected(on) { store.set('midiConnected', on); },
  };
  const midiPanel = player.listen(new MidiPanel(midi, piano, midiPrefs));
  const recording = player.listen(new RecordingControls(piano));
  player.listen({
    noteOn: (e) => {
      keyboard.light(e.key, buttonColor(e.button), true);
      trails.noteOn(e.key, buttonColor(e.button), e.velocity);
      latency.add(e.decodeMs + (piano.muted ? 0 : piano.outputLatency * 1000));
      if (!readoutPending) readoutPending = setTimeout(readout, latency.count > 1 ? READOUT_MS : 0);
      log.push({ type: 'on', button: e.button, key: e.key, pitch: e.pitch, velocity: e.velocity, time: e.time,
        restrike: e.restrike, latencyMs: e.decodeMs });
      if (lookAheadOn) showAhead();
    },
    noteOff: (e) => {
      keyboard.light(e.key, '', false);
      trails.noteOff(e.key);
      log.push({ type: 'off', button: e.button, key: e.key, pitch: e.pitch, time: e.time });
    },
    soundOff: (e) => log.push({ type: 'sound-off', key: e.key, pitch: e.pitch, time: e.time }),
    pedal: (down, time) => {
      pedal.pedal(down);
      log.push({ type: 'pedal', down, time });
    },
    buttonState: (b, down) => buttons.setDown(b, down),
    reset: () => {
      keyboard.clearLights();
      trails.clear();
      showAhead();
    },
  });

  // Every setting is kept (settings.js): the controls are set to what was stored, then followed.
  settings = bindControls(store, {
    temperature: control('#temperature'), scaleTonic: control('#scale-tonic'), scaleType: control('#scale-type'),
    rangeLow: control('#range-low'), rangeHigh: control('#range-high'),
    ...Object.fromEntries([.../** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('#scale-custom input'))].map((b) => [`scaleNote${b.value}`, b])),
    lookAhead: control('#lookahead'), trails: control('#trails-toggle'), dynamics: control('#dynamics'),
    touchDynamics: control('#touch-dynamics'), genieDynamics: control('#genie-dynamics'),
    midiChannel: control('#midi-channel'), mutePiano: control('#mute-piano'),
    harmonyKey: control('#harmony-key'), harmonyStyle: control('#harmony-style'), progression: control('#progression'),
    progressionPreset: control('#progression-preset'), tempo: control('#tempo'), midiSplit: control('#midi-split'),
  });
  harmony.show(); // the stored progression
  const baseReset = settings.reset;
  settings.reset = () => {
    baseReset(); midi.allNotesOff(); midi.outputId = ''; midiPanel.render();
    switchGenie(index.default); // the stored choice went with the rest
  };

  bindKeys(player, { numButtons: config.numButtons, paused: () => help.isOpen,
    stepDynamics: (by) => controls.stepDynamics(by) });
  bindPointers(player, buttons.els, { touchDynamics: () => controls.touchDynamics });

  Object.assign(handle, { settings: store, session, config, kernel: decoder.kernel, player, keyboard, trails, piano, midi, recording,
    midiFile: () => recording.midiFile(), harmony, genies: index.genies.map((g) => ({ ...g })), genie: genie.slug });
  const fingerprintLater = (cfg, w) => {
    // The fingerprint at idle: it reads the weights (a few ms before the JIT warms to it).
    /** @type {(callback: () => void, options: IdleRequestOptions) => number} */ (window.requestIdleCallback || setTimeout)(
      () => { if (w === weights) showModel(cfg, modelFingerprint(w)); }, { timeout: 2000 });
  };
  showModel(config, null);
  fingerprintLater(config, weights);

  // The genie picker (only where the site offers several): switching loads that model (decoder and
  // velocity head), then resets the performance; presses play the old genie until the new one is in.
  let switching = null;
  const switchGenie = async (slug) => {
    const next = index.genies.find((g) => g.slug === slug);
    if (!next || next.slug === genie.slug) return;
    store.set('genie', next.slug);
    const ticket = switching = {};
    $('#status').textContent = `Loading the ${next.name}…`;
    handle.switching = true;
    try {
      const m = await loadGenie(next);
      if (ticket !== switching) return; // a later choice won
      if (m.config.numButtons !== config.numButtons || m.config.numKeys !== config.numKeys) {
        window.location.reload(); // another instrument shape: the page is built for the stored choice
        return;
      }
      ({ session, weights } = m);
      genie = next;
      player.session = session;
      player.reset();
      Object.assign(handle, { session, config: m.config, kernel: m.decoder.kernel, genie: genie.slug });
      showModel(m.config, null);
      fingerprintLater(m.config, weights);
      $('#status').textContent = `Playing the ${genie.name}`;
      for (const listen of genieListeners) listen(m);
    } catch (e) {
      $('#status').textContent = `Could not load the ${next.name}: ${e.message}`;
    } finally {
      if (ticket === switching) { handle.switching = false; showPicker(); }
    }
  };
  const showPicker = () => {
    for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('#genie-picker input'))) input.checked = input.value === genie.slug;
  };
  const genieListeners = [(m) => harmony.setModel(m.decoder.conditions)]; // told of each new genie's model
  buildPicker(index.genies, genie.slug, switchGenie);
  // The hint names what this device plays with: computer keys where there is a fine pointer (a
  // mouse: there is a keyboard too), else fingers.
  $('#status').textContent = matchMedia('(any-pointer: fine)').matches
    ? 'Ready: play with keys 1–8 or A S D F J K L ;' : 'Ready: tap the buttons'; // the pedal says Space
  document.body.classList.add('ready');
  handle.ready = true;
}

/** The genie picker: one radio per genie, its name and what it was trained on; hidden with one genie. */
function buildPicker(genies, current, onChoose) {
  const box = $('#genie-picker');
  box.closest('fieldset').hidden = genies.length < 2;
  box.replaceChildren(...genies.map((g) => {
    const label = Object.assign(document.createElement('label'), { className: 'genie-option' });
    const input = Object.assign(document.createElement('input'), { type: 'radio', name: 'genie', value: g.slug,
      checked: g.slug === current });
    input.addEventListener('change', () => { if (input.checked) onChoose(g.slug); });
    const name = Object.assign(document.createElement('b'), { textContent: g.name });
    const about = Object.assign(document.createElement('span'), { className: 'info', textContent: g.description || '' });
    label.append(input, name, about);
    return label;
  }));
}

/** Which model plays: its name and what it was trained on (cfg.json), its size, its fingerprint. */
function showModel(config, fingerprint) {
  const size = `${config.numLayers}×${config.rnnDim} LSTM, ${config.numButtons} buttons`;
  const name = config.name || (fingerprint ? `${size} (${fingerprint})` : size);
  const about = [config.name ? `${config.name}: ${size}` : size, config.description || 'its export names no training data',
    ...(fingerprint ? [`weights ${fingerprint}`] : [])].join('; ');
  $('#model-info').textContent = name;
  $('#model-info').parentElement.title = about;
  $('#help-model').textContent = `The model playing: ${about}.`;
  handle.model = { name: config.name, description: config.description, fingerprint };
}

main().catch((e) => {
  handle.error = String(e && e.message ? e.message : e);
  $('#status').textContent = `Could not load the model: ${handle.error}`;
  document.body.classList.add('failed');
  console.error(e);
});
