// The page's behaviour: a drawing pad (pointer events), uploads (picker and drag and drop),
// and the POST /predict call whose answer is shown as a digit, ten bars and the 28x28 input.
// In "a whole number" mode the input goes to POST /read instead: the number is shown, and each
// digit's box is drawn over the pad with its digit and confidence.
// When the service has API keys it answers 401: the page asks for a key and keeps it for the
// browser session (sessionStorage), sending it as `Authorization: Bearer <key>`.
"use strict";

const LINE_WIDTH = 0.072; // of the pad's side: about 20 px on a 280 px pad, like a pen
const DEBOUNCE_MS = 300;
const PAPER = "#ffffff";
const INK = "#000000";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const resultPanel = $("result");

const strokes = []; // finished strokes, each a list of [x, y] in 0..1 of the pad's side
let current = null; // the stroke under the pointer
let activePointer = null;
let upload = null; // the uploaded file's name; its picture, once decoded, lies under the strokes
let uploadFile = null; // and the file itself, sent again when the mode changes
let mode = "digit"; // or "number": which question the service is asked
let base = null;
let version = 0; // bumped on every change of the input; answers for older ones are dropped
let timer = 0;
let inFlight = null;
let retryWithKey = null; // what to run again once the user gives an API key
const KEY_STORE = "mnist-digits-api-key";

// ---- drawing -------------------------------------------------------------------------------

function side() {
  return pad.width;
}

function fitPad() {
  const rect = pad.getBoundingClientRect();
  const size = Math.max(1, Math.round(rect.width * (window.devicePixelRatio || 1)));
  if (pad.width !== size || pad.height !== size) {
    pad.width = size;
    pad.height = size;
    redraw();
  }
}

function drawBase() {
  const s = side();
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, s, s);
  if (!base) return;
  const scale = Math.min(s / base.width, s / base.height);
  ctx.imageSmoothingEnabled = scale < 1; // small pictures (MNIST's 28x28) keep their pixels
  const w = base.width * scale;
  const h = base.height * scale;
  ctx.drawImage(base, (s - w) / 2, (s - h) / 2, w, h);
}

function setPen() {
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.lineWidth = LINE_WIDTH * side();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
}

function drawStroke(points) {
  const s = side();
  setPen();
  ctx.beginPath();
  if (points.length === 1) {
    const [x, y] = points[0];
    ctx.arc(x * s, y * s, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.moveTo(points[0][0] * s, points[0][1] * s);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x * s, y * s);
  ctx.stroke();
}

let frame = 0;
function redrawSoon() {
  if (!frame) frame = requestAnimationFrame(redraw);
}

function redraw() {
  cancelAnimationFrame(frame);
  frame = 0;
  drawBase();
  strokes.forEach(drawStroke);
  if (current) drawStroke(current);
}

function pointOf(event) {
  const rect = pad.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - rect.left) / rect.width),
    clamp((event.clientY - rect.top) / rect.height)];
}

pad.addEventListener("pointerdown", (event) => {
  if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  activePointer = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  clearTimeout(timer);
  current = [pointOf(event)];
  redrawSoon();
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== activePointer || !current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) current.push(pointOf(e));
  redrawSoon();
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activePointer = null;
  if (!current) return;
  strokes.push(current);
  current = null;
  redraw();
  inputChanged();
  schedulePrediction();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
pad.addEventListener("lostpointercapture", endStroke);

// ---- input state ---------------------------------------------------------------------------

function isEmpty() {
  return strokes.length === 0 && upload === null;
}

function inputChanged() {
  version += 1;
  pad.dataset.version = String(version);
  $("undo").disabled = isEmpty();
  $("clear").disabled = isEmpty();
  if (inFlight) inFlight.abort();
  inFlight = null;
  clearBoxes();
}

function ask() {
  // Ask about the current input: the uploaded file itself while nothing is drawn over it.
  if (uploadFile && strokes.length === 0) predict(Promise.resolve(uploadFile), upload, version);
  else schedulePrediction();
}

function schedulePrediction() {
  clearTimeout(timer);
  if (isEmpty()) {
    showIdle();
    return;
  }
  const v = version;
  timer = setTimeout(() => {
    predict(new Promise((resolve) => pad.toBlob(resolve, "image/png")), "drawing.png", v, true);
  }, DEBOUNCE_MS);
}

function undo() {
  if (current) return;
  if (strokes.length) strokes.pop();
  else if (upload !== null) clearSource();
  else return;
  redraw();
  inputChanged();
  schedulePrediction();
}

function clearAll() {
  strokes.length = 0;
  current = null;
  clearSource();
  redraw();
  inputChanged();
  schedulePrediction();
}

function clearSource() {
  upload = null;
  uploadFile = null;
  base = null;
  $("source").hidden = true;
  $("source").textContent = "";
}

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (event) => {
  const typing = event.target instanceof HTMLInputElement && event.target.type !== "file";
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z"
      && !typing) {
    event.preventDefault();
    undo();
  }
});

// ---- uploads -------------------------------------------------------------------------------

function useFile(file) {
  clearTimeout(timer);
  strokes.length = 0;
  current = null;
  upload = file.name || "upload";
  uploadFile = file;
  base = null;
  $("source").textContent = `Showing your file: ${upload}. Drawing adds to it.`;
  $("source").hidden = false;
  redraw();
  inputChanged();
  const v = version;
  // Shown on the pad when the browser can decode it; the service judges the file either way.
  createImageBitmap(file).then((bitmap) => {
    if (v !== version) return;
    base = bitmap;
    redraw();
  }, () => {});
  predict(Promise.resolve(file), upload, v);
}

document.querySelectorAll('input[name="mode"]').forEach((radio) => {
  radio.addEventListener("change", () => {
    if (!radio.checked) return;
    mode = radio.value;
    resultPanel.dataset.mode = mode;
    inputChanged();
    if (isEmpty()) showIdle();
    else ask();
  });
});

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) useFile(file);
  event.target.value = "";
});

const dropzone = $("dropzone");
["dragenter", "dragover"].forEach((type) => dropzone.addEventListener(type, (event) => {
  event.preventDefault();
  dropzone.classList.add("dragging");
}));
["dragleave", "drop"].forEach((type) => dropzone.addEventListener(type, () => {
  dropzone.classList.remove("dragging");
}));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) useFile(file);
  else showError(version, "Nothing to read there: drop an image file (PNG, JPEG…).");
});
// A file dropped beside the box must not make the browser leave the page.
["dragover", "drop"].forEach((type) => document.addEventListener(type, (e) => e.preventDefault()));

// ---- the service ---------------------------------------------------------------------------

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey(message, again) {
  retryWithKey = again;
  $("key-message").textContent = message;
  $("key-form").hidden = false;
  $("key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  $("key").value = "";
  $("key-form").hidden = true;
  const again = retryWithKey;
  retryWithKey = null;
  if (again) again();
  showModel();
});

async function predict(blobPromise, filename, v, fromPad = false) {
  const reading = mode === "number";
  const controller = new AbortController();
  inFlight = controller;
  showPending(v);
  const blob = await blobPromise;
  if (controller.signal.aborted || v !== version) return;
  const form = new FormData();
  form.append("file", blob, filename);
  let response;
  let body = null;
  try {
    response = await fetch(reading ? "read" : "predict?include_image=true", {
      method: "POST", body: form, signal: controller.signal, headers: authHeaders(),
    });
    body = await response.json().catch(() => null);
  } catch (err) {
    if (controller.signal.aborted) return;
    showError(v, "Could not reach the service. Check that it is running, then try again.");
    return;
  }
  if (controller.signal.aborted || v !== version) return;
  inFlight = null;
  if (response.status === 401) {
    const had = sessionStorage.getItem(KEY_STORE);
    sessionStorage.removeItem(KEY_STORE);
    showError(v, "This service needs an API key: enter one below.");
    askForKey(
      had ? "That API key was not accepted; enter another." : "This service needs an API key.",
      () => predict(blobPromise, filename, v, fromPad),
    );
    return;
  }
  if (reading && response.ok && body && Array.isArray(body.digits)) showNumber(v, body, fromPad);
  else if (!reading && response.ok && body && Array.isArray(body.probabilities)) showAnswer(v, body);
  else if (response.ok) showError(v, "The service answered with something unexpected.");
  else showError(v, describeError(response.status, body));
}

function detailOf(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => (d && d.msg) || String(d)).join("; ");
  return "";
}

function describeError(status, body) {
  const detail = detailOf(body).replace(/\.$/, "");
  if (status < 500 && typeof (body && body.detail) === "string" && detail) {
    return `${detail.charAt(0).toUpperCase()}${detail.slice(1)}.`;
  }
  const headings = {
    400: "The image could not be read",
    413: "The file is too large",
    415: "That file is not an image the service can read",
    422: "No digit could be read",
    // (a /read of more than twelve digits is a 422 too, with its own detail)
    503: "The model is still loading; try again in a moment",
  };
  let heading = headings[status];
  if (!heading) {
    heading = status >= 500
      ? `The service had a problem (HTTP ${status}); try again`
      : `The service refused the request (HTTP ${status})`;
  }
  return detail ? `${heading}: ${detail}.` : `${heading}.`;
}

// ---- showing the answer --------------------------------------------------------------------

function percent(p) {
  if (p > 0 && p < 0.0005) return "<0.1%";
  if (p < 1 && p >= 0.9995) return ">99.9%";
  return `${(p * 100).toFixed(1)}%`;
}

function renderBars(probabilities) {
  const list = $("bars");
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  list.replaceChildren(...Array.from({ length: 10 }, (_, digit) => {
    const p = probabilities ? probabilities[digit] : 0;
    const item = document.createElement("li");
    item.className = digit === top ? "top" : "";
    item.dataset.digit = String(digit);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = String(digit);
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = "digit ";
    label.prepend(hidden);
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = probabilities ? percent(p) : "–";
    item.append(label, track, value);
    return item;
  }));
}

function setState(state, v) {
  resultPanel.dataset.state = state;
  resultPanel.dataset.version = String(v);
}

function showIdle() {
  setState("idle", version);
  clearBoxes();
  $("number-digits").hidden = true;
  $("status").textContent = mode === "number"
    ? "Draw a number or upload a picture of one."
    : "Draw a digit or upload an image.";
  $("quick").textContent = "";
  $("error").hidden = true;
  $("answer").hidden = true;
  renderBars(null);
}

function showPending(v) {
  setState("pending", v);
  $("status").textContent = "Reading…";
  $("quick").textContent = "Reading…";
}

function showError(v, message) {
  setState("error", v);
  $("status").textContent = "No prediction.";
  $("quick").textContent = "No prediction: see below.";
  $("error").textContent = message;
  $("error").hidden = false;
  $("answer").hidden = true;
  $("number-digits").hidden = true;
  renderBars(null);
}

function showAnswer(v, body) {
  setState("done", v);
  const isDigit = body.is_digit !== false;
  resultPanel.dataset.digit = isDigit ? String(body.digit) : "none";
  resultPanel.classList.toggle("not-digit", !isDigit);
  $("error").hidden = true;
  if (isDigit) {
    $("digit").textContent = String(body.digit);
    $("confidence").textContent = `${percent(body.confidence)} sure`;
    $("status").textContent = `It looks like a ${body.digit} (${percent(body.confidence)} sure).`;
    $("quick").textContent = `→ ${body.digit} (${percent(body.confidence)})`;
  } else if (body.detail) {
    $("digit").textContent = "?";
    $("confidence").textContent = "several signs side by side";
    $("status").textContent = "This does not look like a digit but like several side by side. "
      + "If it is a number, choose “a whole number” above to read it.";
    $("quick").textContent = "→ several signs";
  } else {
    $("digit").textContent = "?";
    $("confidence").textContent = `closest: ${body.digit}, only ${percent(body.confidence)} sure`;
    $("status").textContent =
      "This does not look like a digit. Draw or upload one handwritten digit.";
    $("quick").textContent = "→ not a digit";
  }
  $("number-digits").hidden = true;
  const seen = $("seen");
  if (body.input_image) seen.src = `data:image/png;base64,${body.input_image}`;
  seen.parentElement.hidden = !body.input_image;
  $("answer").hidden = false;
  renderBars(body.probabilities);
}

function showNumber(v, body, fromPad) {
  setState("done", v);
  resultPanel.dataset.digit = body.number;
  resultPanel.dataset.number = body.number;
  resultPanel.classList.remove("not-digit");
  $("error").hidden = true;
  const least = Math.min(...body.digits.map((d) => d.confidence));
  const doubtful = body.digits.filter((d) => !d.is_digit).length;
  $("digit").textContent = body.number;
  $("confidence").textContent = `least sure digit: ${percent(least)}`;
  const count = `${body.digits.length} digit${body.digits.length === 1 ? "" : "s"}`;
  $("status").textContent = `It reads ${body.number} (${count}${
    doubtful ? `, ${doubtful} of them not clearly a digit` : ""}).`;
  $("quick").textContent = `→ ${body.number}`;
  $("seen").parentElement.hidden = true;
  $("answer").hidden = false;
  $("number-digits").replaceChildren(...body.digits.map((d) => {
    const item = document.createElement("li");
    item.dataset.digit = String(d.digit);
    item.textContent = `${d.digit}: ${percent(d.confidence)} sure${d.is_digit ? "" : " (not clearly a digit)"}`;
    return item;
  }));
  $("number-digits").hidden = false;
  renderBars(null);
  drawBoxes(body.digits, fromPad);
}

function clearBoxes() {
  $("boxes").replaceChildren();
}

function drawBoxes(digits, fromPad) {
  // Boxes are in the sent picture's pixels: the pad's own, or the upload's, which the pad
  // shows scaled to fit and centred (drawBase).
  const cssPerPad = pad.clientWidth / pad.width; // the canvas's drawing area, inside its border
  let scale = 1;
  let left = 0;
  let top = 0;
  if (!fromPad) {
    if (!base) return; // the browser could not show the file: nothing to draw the boxes on
    const s = side();
    scale = Math.min(s / base.width, s / base.height);
    left = (s - base.width * scale) / 2;
    top = (s - base.height * scale) / 2;
  }
  $("boxes").replaceChildren(...digits.map((d) => {
    const [x0, y0, x1, y1] = d.box;
    const box = document.createElement("div");
    box.className = d.is_digit ? "box" : "box doubtful";
    box.style.left = `${pad.clientLeft + (left + x0 * scale) * cssPerPad}px`;
    box.style.top = `${pad.clientTop + (top + y0 * scale) * cssPerPad}px`;
    box.style.width = `${(x1 - x0) * scale * cssPerPad}px`;
    box.style.height = `${(y1 - y0) * scale * cssPerPad}px`;
    const label = document.createElement("span");
    label.textContent = `${d.digit} ${Math.floor(d.confidence * 100)}%`; // compact: boxes are close
    box.title = `${d.digit}: ${percent(d.confidence)} sure`;
    box.append(label);
    return box;
  }));
}

let modelShown = false;

async function showModel() {
  if (modelShown) return;
  try {
    const response = await fetch("model", { headers: authHeaders() });
    if (!response.ok) return;
    const info = await response.json();
    const parts = [];
    if (info.architecture) parts.push(`model ${info.architecture}`);
    const accuracy = Number(info.test_accuracy ?? (info.metadata || {}).test_accuracy);
    if (Number.isFinite(accuracy) && accuracy > 0) {
      parts.push(`${(accuracy <= 1 ? accuracy * 100 : accuracy).toFixed(2)}% on MNIST test`);
    }
    if (info.device) parts.push(`on ${info.device}`);
    if (parts.length) $("model-info").prepend(`${parts.join(", ")} · `);
    modelShown = true;
  } catch (err) {
    // The model line is a courtesy; the page works without it.
  }
}

new ResizeObserver(fitPad).observe(pad);
fitPad();
showIdle();
showModel();
