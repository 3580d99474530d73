// The page of seq2seq-serve: reads GET /v1/models, posts the text to the chosen model's endpoint
// with "attention": true, and draws each output with its attention heatmap (rows: output pieces,
// the EOS step included; columns: source pieces). Text goes into the page through textContent
// only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], limits: null };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function chosenModel() {
  return state.models.find((m) => m.name === $("model").value);
}

function onModelChange() {
  const model = chosenModel();
  if (!model) return;
  $("beam").value = Math.min(model.beam_size, state.limits.max_beam_size);
  $("go").textContent = model.task === "summarization" ? "Summarize" : "Translate";
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models");
    const body = await response.json();
    state.models = body.models;
    state.limits = body.limits;
  } catch (e) {
    $("status").textContent = "could not read /v1/models: " + e;
    return;
  }
  for (const m of state.models) {
    const option = el("option", "", `${m.name} (${m.task}${m.copy ? ", copy" : ""})`);
    option.value = m.name;
    $("model").append(option);
  }
  $("beam").max = state.limits.max_beam_size;
  $("limits").textContent = `At most ${state.limits.max_sentences} lines and ` +
    `${state.limits.max_chars} characters per request.`;
  $("status").textContent = `${state.models.length} model(s) loaded`;
  onModelChange();
  $("go").disabled = state.models.length === 0;
}

// One row per output piece, one column per source piece; a copy-probability column when the
// model copies (1 - p_gen), and a coverage row (attention summed over the output steps).
function heatmap(att) {
  const table = el("table", "heatmap");
  table.classList.toggle("vertical", att.source.some((piece) => piece.length > 2));
  const head = table.createTHead().insertRow();
  head.append(el("th", "corner"));
  const sources = att.source.map((piece, i) => {
    const th = el("th", "src", piece);
    th.dataset.i = i;
    head.append(th);
    return th;
  });
  const copies = att.p_gen !== undefined;
  if (copies) head.append(el("th", "copy", "copy"));

  const body = table.createTBody();
  att.output.forEach((piece, t) => {
    const row = body.insertRow();
    row.dataset.t = t;
    row.append(el("th", "out", piece));
    att.weights[t].forEach((w, i) => {
      const cell = row.insertCell();
      cell.className = "cell";
      cell.dataset.w = w;
      cell.style.setProperty("--w", w);
      cell.title = `${piece} → ${att.source[i]}: ${w.toFixed(3)}`;
    });
    if (copies) {
      const p = 1 - att.p_gen[t];
      const cell = row.insertCell();
      cell.className = "copy";
      cell.dataset.p = p;
      cell.style.setProperty("--w", p);
      cell.textContent = p.toFixed(2);
      cell.title = `probability of copying rather than generating: ${p.toFixed(3)}`;
    }
    row.addEventListener("mouseenter", () => highlight(row, sources, att.weights[t]));
    row.addEventListener("mouseleave", () => highlight(row, sources, null));
  });

  const foot = table.createTFoot().insertRow();
  foot.className = "coverage";
  foot.append(el("th", "", "coverage"));
  att.coverage.forEach((c, i) => {
    const cell = foot.insertCell();
    cell.style.setProperty("--w", Math.min(c, 1));
    cell.classList.toggle("dark", c > 0.6);
    cell.textContent = c.toFixed(1);
    cell.title = `${att.source[i]}: attention summed over the output, ${c.toFixed(3)}`;
  });
  return table;
}

// weights null: clear. Else colour each source piece by its weight, and mark those that hold
// at least half of the largest weight as attended.
function highlight(row, sources, weights) {
  row.classList.toggle("active", weights !== null);
  const top = weights ? Math.max(...weights) : 0;
  sources.forEach((th, i) => {
    const w = weights ? weights[i] : 0;
    th.style.setProperty("--w", w);
    th.classList.toggle("lit", weights !== null);
    th.classList.toggle("attended", weights !== null && w >= top / 2);
  });
}

function render(lines, body) {
  const results = $("results");
  results.replaceChildren();
  lines.forEach((line, i) => {
    const block = el("article", "result");
    block.append(el("p", "source", line));
    block.append(el("p", "output", body.outputs[i][0]));
    const score = body.scores[i][0];
    block.append(el("span", "score", score === null ? "" : `log-probability ${score.toFixed(3)}`));
    const att = body.attention[i][0];
    if (att.source.length > 0) {
      const wrap = el("div", "heatmap-wrap");
      wrap.append(heatmap(att));
      block.append(wrap);
      if (att.p_gen !== undefined) {
        block.append(el("p", "legend", "copy: the probability that each output piece was " +
          "copied from the source rather than generated (1 - p_gen)."));
      }
    }
    results.append(block);
  });
}

async function submit(event) {
  event.preventDefault();
  const model = chosenModel();
  const lines = $("text").value.replace(/\n+$/, "").split("\n");
  if (!model || (lines.length === 1 && lines[0] === "")) return;
  showError("");
  $("go").disabled = true;
  $("status").textContent = "working…";
  try {
    const response = await fetch(model.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: lines, model: model.name, beam_size: Number($("beam").value),
                             attention: true }),
    });
    const body = await response.json();
    if (!response.ok) {
      showError(body.error || `error ${response.status}`);
      $("status").textContent = "";
      return;
    }
    render(lines, body);
    $("status").textContent = `${model.name}, beam ${body.beam_size}`;
  } catch (e) {
    showError("the server did not answer: " + e);
    $("status").textContent = "";
  } finally {
    $("go").disabled = false;
  }
}

$("model").addEventListener("change", onModelChange);
$("form").addEventListener("submit", submit);
loadModels();
