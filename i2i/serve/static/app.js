// The i2i page: pick a model, translate images through POST /api/translate one at a time,
// show each result beside its input, download one or all (a zip made here); watch runs.
'use strict';

const $ = (selector) => document.querySelector(selector);
const state = { models: {}, queue: [], busy: false, done: [], run: null };

async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'text') node.textContent = value; else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// ------------------------------------------------------------------ models

function describe(model) {
  const parts = [model.task || model.pipeline];
  if (model.scale > 1) parts.push(`x${model.scale}`);
  parts.push(model.directions.length > 1 ? `AtoB/BtoA (default ${model.default_direction})` : model.directions[0]);
  parts.push(`${model.in_channels}→${model.out_channels} channels`, model.source);
  return parts.join(', ');
}

async function loadModels() {
  const select = $('#model');
  if (!select.options.length) select.append(element('option', { value: '', text: 'reading the models…' }));
  try {
    const data = await getJson('/api/models');
    $('#server').textContent = `device: ${data.device}`;
    const chosen = select.value;
    select.replaceChildren();
    for (const model of data.models) {
      state.models[model.name] = model;
      select.append(element('option', { value: model.name, text: model.name }));
    }
    if (!data.models.length) showMessage('No models: start the server with --models DIR (model files or run folders).');
    if (chosen in state.models) select.value = chosen;
    modelChanged();
  } catch (error) {
    showMessage(`Cannot list the models: ${error.message}`);
  }
}

function modelChanged() {
  const model = state.models[$('#model').value];
  const direction = $('#direction');
  direction.replaceChildren();
  $('#model-info').textContent = model ? describe(model) : '';
  if (!model) return;
  for (const name of model.directions) direction.append(element('option', { value: name, text: name }));
  direction.value = model.default_direction;
  $('#direction-label').hidden = model.directions.length < 2;
}

function showMessage(text) {
  $('#message').textContent = text;
  $('#message').hidden = !text;
}

// ------------------------------------------------------------------ translating

function addFiles(files) {
  for (const file of files) {
    const item = { file, id: `job-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}` };
    item.status = element('span', { class: 'status', text: 'queued' });
    item.link = element('a', { class: 'download', hidden: '' , text: 'download' });
    item.input = element('img', { class: 'in pixelated', alt: `input ${file.name}` });
    item.output = element('img', { class: 'out', alt: `output of ${file.name}` });
    item.input.src = URL.createObjectURL(file);
    const frames = [item.input, item.output].map((img) => element('div', { class: 'frame' }, img));
    frames[0].addEventListener('scroll', () => syncScroll(frames[0], frames[1]));
    frames[1].addEventListener('scroll', () => syncScroll(frames[1], frames[0]));
    item.frames = frames;
    item.node = element('div', { class: 'result' },
      element('div', { class: 'head' }, element('b', { text: file.name }), item.status, item.link),
      element('div', { class: 'pair' },
        element('figure', {}, element('figcaption', { text: 'input' }), frames[0]),
        element('figure', {}, element('figcaption', { text: 'output' }), frames[1])));
    $('#results').prepend(item.node);
    applyZoom(item);
    state.queue.push(item);
  }
  showQueue();
  pump();
}

function syncScroll(from, to) {
  if (to.scrollLeft !== from.scrollLeft) to.scrollLeft = from.scrollLeft;
  if (to.scrollTop !== from.scrollTop) to.scrollTop = from.scrollTop;
}

function showQueue() {
  const waiting = state.queue.length;
  $('#queue').textContent = waiting ? `${waiting} image${waiting > 1 ? 's' : ''} waiting to be sent` : '';
}

async function pump() {
  if (state.busy) return;
  const item = state.queue.shift();
  showQueue();
  if (!item) return;
  state.busy = true;
  try {
    await translate(item);
  } finally {
    state.busy = false;
    pump();
  }
}

async function translate(item) {
  const model = state.models[$('#model').value];
  if (!model) { setStatus(item, 'no model chosen', true); return; }
  const query = new URLSearchParams({ model: model.name, direction: $('#direction').value || model.default_direction,
                                      tile: String(Math.max(0, parseInt($('#tile').value, 10) || 0)) });
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  setStatus(item, 'sending');
  const poll = setInterval(async () => {
    try {
      const status = await getJson(`/api/status?job=${item.id}`);
      if (!status.job) return;
      const { position: ahead, phase } = status.job;
      const queue = ahead ? `${ahead} job${ahead > 1 ? 's' : ''} ahead of this one` : 'next in line';
      setStatus(item, phase === 'waiting' ? `waiting: ${queue} (${seconds()} s)`
                                          : `${phase} with ${model.name} (${seconds()} s)`);
    } catch (error) { /* the answer will tell */ }
  }, 400);
  try {
    const response = await fetch(`/api/translate?${query}`, {
      method: 'POST', body: item.file, headers: { 'X-I2I-Job': item.id },
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(`${response.status}: ${body.error}`);
    }
    const frames = Number(response.headers.get('X-I2I-Frames')) || 1;  // an animation: its first frame
    item.blob = await response.blob();
    item.name = `${item.file.name.replace(/\.[^.]*$/, '') || 'image'}.png`;
    const url = URL.createObjectURL(item.blob);
    await new Promise((resolve) => { item.output.onload = resolve; item.output.onerror = resolve; item.output.src = url; });
    item.link.href = url;
    item.link.download = item.name;
    item.link.hidden = false;
    applyZoom(item);
    setStatus(item, `done in ${seconds()} s: ${item.output.naturalWidth}x${item.output.naturalHeight} with ${model.name}`
                    + (frames > 1 ? ` (the first of its ${frames} frames or pages)` : ''));
    state.done.push(item);
    $('#download-all').disabled = false;
  } catch (error) {
    setStatus(item, error.message, true);
  } finally {
    clearInterval(poll);
  }
}

function setStatus(item, text, failed = false) {
  item.status.textContent = text;
  item.status.classList.toggle('error', failed);
}

// Both images at the output's size (the input enlarged, pixelated), times the zoom; "fit"
// is 100% shrunk to the frame's width where it is wider.
function applyZoom(item) {
  const zoom = $('#zoom').value;
  const width = item.output.naturalWidth;
  for (const frame of item.frames) frame.classList.toggle('fit', zoom === 'fit');
  for (const img of [item.input, item.output]) {
    img.style.width = width ? `${Math.round(width * (zoom === 'fit' ? 1 : Number(zoom)))}px` : '';
  }
}

// ------------------------------------------------------------------ zip (stored, no compression: PNGs are)

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function zip(files) {
  const parts = [], directory = [];
  let offset = 0;
  const encoder = new TextEncoder();
  for (const { name, bytes } of files) {
    const encoded = encoder.encode(name), crc = crc32(bytes);
    const header = (signature) => {
      const view = new DataView(new ArrayBuffer(signature === 0x04034b50 ? 30 : 46));
      view.setUint32(0, signature, true);
      let at = 4;
      if (signature === 0x02014b50) { view.setUint16(at, 20, true); at += 2; }  // version made by
      view.setUint16(at, 20, true); view.setUint16(at + 2, 0x0800, true);  // version needed, UTF-8 names
      view.setUint16(at + 4, 0, true);  // stored
      view.setUint16(at + 6, 0, true); view.setUint16(at + 8, 0x21, true);  // time, date (1980-01-01)
      view.setUint32(at + 10, crc, true); view.setUint32(at + 14, bytes.length, true);
      view.setUint32(at + 18, bytes.length, true); view.setUint16(at + 22, encoded.length, true);
      if (signature === 0x02014b50) view.setUint32(42, offset, true);  // where its local header is
      return new Uint8Array(view.buffer);
    };
    const local = header(0x04034b50);
    parts.push(local, encoded, bytes);
    directory.push(header(0x02014b50), encoded);
    offset += local.length + encoded.length + bytes.length;
  }
  const size = directory.reduce((total, part) => total + part.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...directory, new Uint8Array(end.buffer)], { type: 'application/zip' });
}

async function downloadAll() {
  const taken = new Set(), files = [];
  for (const item of state.done) {
    let name = item.name, n = 1;
    while (taken.has(name)) name = item.name.replace(/\.png$/, `-${++n}.png`);
    taken.add(name);
    files.push({ name, bytes: new Uint8Array(await item.blob.arrayBuffer()) });
  }
  const link = element('a', { href: URL.createObjectURL(zip(files)), download: 'i2i-results.zip' });
  document.body.append(link);
  link.click();
  link.remove();
}

// ------------------------------------------------------------------ runs

async function loadRuns() {
  try {
    const data = await getJson('/api/runs');
    const list = $('#run-list');
    list.replaceChildren();
    if (!data.runs.length) list.append(element('li', { class: 'muted', text: 'No runs (start the server with --runs DIR).' }));
    for (const run of data.runs) {
      const button = element('button', { type: 'button', text: `${run.name} · step ${run.step}` });
      button.classList.toggle('active', run.name === state.run);
      button.addEventListener('click', () => { state.run = run.name; loadRuns(); });
      list.append(element('li', {}, button));
    }
    if (state.run) await showRun(state.run);
  } catch (error) {
    $('#run-detail').textContent = `Cannot list the runs: ${error.message}`;
  }
}

async function showRun(name) {
  const run = await getJson(`/api/run?name=${encodeURIComponent(name)}`);
  const facts = [`step ${run.step}`];
  if (run.epoch != null) facts.push(`epoch ${run.epoch}`);
  if (run.sec_per_step) facts.push(`${run.sec_per_step.toPrecision(3)} s/step`);
  const detail = $('#run-detail');
  detail.replaceChildren(element('h2', { text: name }), element('p', { text: facts.join(', ') }));
  const charts = element('div', { class: 'charts' });
  charts.innerHTML = run.charts || '<p class="muted">no metrics yet</p>';  // SVG made by the server (i2i.report)
  detail.append(element('h3', { text: 'Losses' }), charts, element('h3', { text: 'Latest samples' }));
  if (run.sample_step == null) {
    detail.append(element('p', { class: 'muted', text: 'no samples yet' }));
  } else {
    detail.append(element('p', { class: 'muted', text: `step ${run.sample_step}` }),
      element('img', { src: `/api/run/sample?name=${encodeURIComponent(name)}&step=${run.sample_step}`,
                       alt: `samples at step ${run.sample_step}` }));
  }
}

// ------------------------------------------------------------------ wiring

function showTab(name) {
  for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.dataset.tab === name);
  $('#translate').hidden = name !== 'translate';
  $('#runs').hidden = name !== 'runs';
  if (name === 'runs') loadRuns();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showTab(tab.dataset.tab));
  $('#model').addEventListener('change', modelChanged);
  $('#zoom').addEventListener('change', () => state.done.forEach(applyZoom));
  $('#files').addEventListener('change', (event) => { addFiles(event.target.files); event.target.value = ''; });
  $('#download-all').addEventListener('click', downloadAll);
  const drop = $('#drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    addFiles(event.dataTransfer.files);
  });
  setInterval(() => { if (!$('#runs').hidden) loadRuns(); }, 5000);
  loadModels();
});
