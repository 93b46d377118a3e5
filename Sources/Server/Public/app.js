// PosterSim's page: plain JavaScript, no build step. The page's state lives in its URL
// (/?movie=ID&model=CLIP[&compare=1], /?q=TEXT, /?mode=image&model=VGG16) so results can be bookmarked and reloaded.
"use strict";

const MODELS = ["CLIP", "ResNet-50", "VGG16"];
const TOP_K = 10;
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// ---- State <-> URL ----

function stateFromURL() {
  const params = new URLSearchParams(location.search);
  const model = MODELS.includes(params.get("model")) ? params.get("model") : "CLIP";
  const movie = params.get("movie") || "";
  const q = params.get("q") || "";
  let mode = params.get("mode");
  if (!["movie", "image", "text"].includes(mode)) mode = q ? "text" : "movie";
  return { mode, model, movie, q, compare: params.get("compare") === "1" };
}

function urlFor(state) {
  const params = new URLSearchParams();
  if (state.mode === "movie") {
    if (state.movie) params.set("movie", state.movie);
    params.set("model", state.model);
    if (state.compare) params.set("compare", "1");
  } else if (state.mode === "text") {
    if (state.q) params.set("q", state.q);
  } else {
    params.set("mode", "image");
    params.set("model", state.model);
  }
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

let state = stateFromURL();

function navigate(patch) {
  state = { ...state, ...patch };
  const url = urlFor(state);
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
  apply();
}

window.addEventListener("popstate", () => {
  state = stateFromURL();
  apply();
});

// ---- Talking to the API ----

class APIError extends Error {}

// Each new search bumps the generation; answers to older searches are dropped, so a slow reply can't overwrite a newer one.
let generation = 0;

async function requestJSON(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new APIError("The server cannot be reached.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    // Not JSON: the status line is all we can say.
  }
  if (!response.ok) {
    const reason = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    const retry = response.headers.get("Retry-After");
    throw new APIError(retry ? `${reason} (try again in ${retry} s)` : reason);
  }
  return body;
}

function similarURL(movie, model) {
  const params = new URLSearchParams({ movieId: movie, model, topK: String(TOP_K) });
  return `/api/get-similar-movies?${params}`;
}

// ---- Rendering ----

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function posterURL(posterPath) {
  return posterPath ? `/posters${posterPath.startsWith("/") ? "" : "/"}${posterPath}` : "";
}

function formatScore(score, model) {
  if (typeof score !== "number") return "";
  return model === "CLIP" ? `similarity ${score.toFixed(3)}` : `distance ${score.toPrecision(4)}`;
}

function card(match, model, selfID) {
  const metadata = match.metadata || {};
  const node = $("#card-template").content.firstElementChild.cloneNode(true);
  node.dataset.id = match.id;
  if (match.id === selfID) node.classList.add("self");
  const poster = $(".poster", node);
  const src = posterURL(metadata.poster_path);
  if (src) poster.src = src;
  poster.alt = metadata.title ? `Poster of ${metadata.title}` : "Poster";

  const link = document.createElement("a");
  link.href = urlFor({ mode: "movie", movie: match.id, model, compare: false, q: "" });
  link.textContent = metadata.title || `Movie ${match.id}`;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    navigate({ mode: "movie", movie: match.id, q: "" });
  });
  $(".title", node).append(link);

  const date = typeof metadata.release_date === "string" ? metadata.release_date : "";
  $(".year", node).textContent = date.slice(0, 4) || "year unknown";
  $(".score", node).textContent = formatScore(match.score, model);
  const vote = typeof metadata.vote_average === "number" ? metadata.vote_average.toFixed(1) : "–";
  $(".vote", node).textContent = `★ ${vote}`;
  $(".release", node).textContent = date ? `released ${date}` : "release date unknown";
  $(".overview", node).textContent = metadata.overview || "";
  return node;
}

function renderGrid(container, matches, model, selfID) {
  container.replaceChildren(...matches.map((m) => card(m, model, selfID)));
}

function renderQueryMovie(match) {
  const section = $("#query-movie");
  if (!match) {
    section.hidden = true;
    section.replaceChildren();
    return;
  }
  const metadata = match.metadata || {};
  const img = document.createElement("img");
  const src = posterURL(metadata.poster_path);
  if (src) img.src = src;
  img.alt = metadata.title ? `Poster of ${metadata.title}` : "Poster";
  const text = document.createElement("div");
  const title = document.createElement("h2");
  title.textContent = metadata.title || `Movie ${match.id}`;
  const meta = document.createElement("p");
  meta.className = "hint";
  meta.textContent = [metadata.release_date, typeof metadata.vote_average === "number" ? `★ ${metadata.vote_average.toFixed(1)}` : ""]
    .filter(Boolean).join(" · ");
  const overview = document.createElement("p");
  overview.textContent = metadata.overview || "";
  text.append(title, meta, overview);
  section.replaceChildren(img, text);
  section.dataset.id = match.id;
  section.hidden = false;
}

function clearResults() {
  $("#results").replaceChildren();
  $("#compare").replaceChildren();
  $("#compare").hidden = true;
  renderQueryMovie(null);
}

// ---- Searches ----

async function showSimilar(movie, model) {
  const mine = ++generation;
  setStatus("Searching…");
  try {
    const data = await requestJSON(similarURL(movie, model));
    if (mine !== generation) return;
    const matches = Array.isArray(data.matches) ? data.matches : [];
    const self = matches.find((m) => m.id === movie);
    renderQueryMovie(self);
    $("#compare").hidden = true;
    renderGrid($("#results"), matches, model, movie);
    if (self && !$("#search-input").value) $("#search-input").value = self.metadata?.title || "";
    setStatus(`${matches.length} posters closest to this one under ${model}.`);
  } catch (err) {
    if (mine !== generation) return;
    clearResults();
    setStatus(err.message, true);
  }
}

async function showComparison(movie) {
  const mine = ++generation;
  setStatus("Searching with the three models…");
  const settled = await Promise.allSettled(MODELS.map((model) => requestJSON(similarURL(movie, model))));
  if (mine !== generation) return;
  const view = $("#compare");
  const columns = [];
  let self = null;
  const failures = [];
  settled.forEach((outcome, i) => {
    const model = MODELS[i];
    const column = document.createElement("div");
    column.className = "column";
    column.dataset.model = model;
    const heading = document.createElement("h2");
    heading.textContent = model;
    const grid = document.createElement("div");
    grid.className = "grid";
    if (outcome.status === "fulfilled") {
      const matches = Array.isArray(outcome.value.matches) ? outcome.value.matches : [];
      self = self || matches.find((m) => m.id === movie);
      renderGrid(grid, matches, model, movie);
    } else {
      failures.push(`${model}: ${outcome.reason.message}`);
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = outcome.reason.message;
      grid.append(p);
    }
    column.append(heading, grid);
    columns.push(column);
  });
  $("#results").replaceChildren();
  renderQueryMovie(self);
  view.replaceChildren(...columns);
  view.hidden = false;
  setStatus(failures.length ? failures.join("; ") : "The three models side by side.", failures.length === MODELS.length);
}

async function showTextSearch(q) {
  const mine = ++generation;
  setStatus("Searching…");
  renderQueryMovie(null);
  $("#compare").hidden = true;
  try {
    const params = new URLSearchParams({ q, topK: String(TOP_K) });
    const data = await requestJSON(`/api/search/text?${params}`);
    if (mine !== generation) return;
    const matches = Array.isArray(data.matches) ? data.matches : [];
    renderGrid($("#results"), matches, "CLIP", null);
    setStatus(`${matches.length} posters closest to “${q}” under CLIP.`);
  } catch (err) {
    if (mine !== generation) return;
    clearResults();
    setStatus(err.message, true);
  }
}

async function searchImage(file) {
  if (!file) return;
  if (file.size > MAX_UPLOAD_BYTES) {
    setStatus("That file is over 10 MB; pick a smaller image.", true);
    return;
  }
  const preview = $("#image-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;

  const mine = ++generation;
  const model = state.model;
  setStatus(`Searching with ${model}…`);
  renderQueryMovie(null);
  $("#compare").hidden = true;
  try {
    const params = new URLSearchParams({ model, topK: String(TOP_K) });
    const data = await requestJSON(`/api/search/image?${params}`, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    if (mine !== generation) return;
    const matches = Array.isArray(data.matches) ? data.matches : [];
    renderGrid($("#results"), matches, model, null);
    setStatus(`${matches.length} posters closest to your image under ${model}.`);
  } catch (err) {
    if (mine !== generation) return;
    clearResults();
    setStatus(err.message, true);
  }
}

// ---- Applying the state to the page ----

function apply() {
  for (const chip of $$(".chip")) {
    chip.setAttribute("aria-checked", String(chip.dataset.model === (state.mode === "text" ? "CLIP" : state.model)));
    chip.disabled = state.mode === "text" && chip.dataset.model !== "CLIP";
  }
  for (const tab of $$(".mode")) tab.setAttribute("aria-selected", String(tab.dataset.mode === state.mode));
  for (const panel of $$(".panel")) panel.hidden = panel.dataset.mode !== state.mode;
  $("#compare-toggle").checked = state.compare;
  hideSuggestions();

  if (state.mode === "movie") {
    if (state.movie) {
      if (state.compare) showComparison(state.movie);
      else showSimilar(state.movie, state.model);
    } else {
      generation++;
      clearResults();
      setStatus("Pick a movie to see the posters that look most like it.");
    }
  } else if (state.mode === "text") {
    $("#text-input").value = state.q;
    if (state.q) showTextSearch(state.q);
    else {
      generation++;
      clearResults();
      setStatus("Describe a poster in a few words.");
    }
  } else {
    generation++;
    clearResults();
    setStatus("Drop an image or choose a file to find posters that look like it.");
  }
}

// ---- Autocomplete ----

let suggestionTimer = null;
let suggestionGeneration = 0;
let activeSuggestion = -1;

function hideSuggestions() {
  const list = $("#suggestions");
  list.hidden = true;
  list.replaceChildren();
  activeSuggestion = -1;
  $("#search-input").setAttribute("aria-expanded", "false");
}

function chooseSuggestion(item) {
  $("#search-input").value = item.dataset.title || item.textContent;
  hideSuggestions();
  navigate({ mode: "movie", movie: item.dataset.id, q: "" });
}

function highlight(index) {
  const items = $$("#suggestions li");
  if (!items.length) return;
  activeSuggestion = (index + items.length) % items.length;
  items.forEach((li, i) => li.setAttribute("aria-selected", String(i === activeSuggestion)));
  items[activeSuggestion].scrollIntoView({ block: "nearest" });
}

async function updateSuggestions(text) {
  const mine = ++suggestionGeneration;
  if (!text.trim()) {
    hideSuggestions();
    return;
  }
  try {
    const params = new URLSearchParams({ q: text, limit: "10" });
    const data = await requestJSON(`/api/movies?${params}`);
    if (mine !== suggestionGeneration) return;
    const movies = Array.isArray(data) ? data : Array.isArray(data?.movies) ? data.movies : [];
    const list = $("#suggestions");
    if (!movies.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No movie matches that title.";
      li.setAttribute("aria-disabled", "true");
      list.replaceChildren(li);
    } else {
      list.replaceChildren(...movies.map((movie) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.dataset.id = String(movie.id);
        li.dataset.title = movie.title || "";
        li.textContent = movie.label || `${movie.title} - ${movie.release_date || ""}`;
        li.addEventListener("mousedown", (event) => {
          event.preventDefault(); // keep focus in the input until the choice is made
          chooseSuggestion(li);
        });
        return li;
      }));
    }
    activeSuggestion = -1;
    list.hidden = false;
    $("#search-input").setAttribute("aria-expanded", "true");
  } catch (err) {
    if (mine !== suggestionGeneration) return;
    hideSuggestions();
    setStatus(err.message, true);
  }
}

// ---- Wiring ----

function initTheme() {
  const saved = localStorage.getItem("postersim-theme");
  const prefersLight = window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches;
  setTheme(saved || (prefersLight ? "light" : "dark"));
  $("#theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    setTheme(next);
    localStorage.setItem("postersim-theme", next);
  });
}

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("#theme-toggle").textContent = theme === "dark" ? "Light theme" : "Dark theme";
}

function init() {
  initTheme();

  for (const chip of $$(".chip")) {
    chip.addEventListener("click", () => {
      if (chip.disabled) return;
      if (state.mode === "image") {
        // A new model for the same image: search it again.
        state = { ...state, model: chip.dataset.model };
        history.replaceState(null, "", urlFor(state));
        apply();
        const file = $("#image-input").files[0] || droppedFile;
        if (file) searchImage(file);
        return;
      }
      navigate({ model: chip.dataset.model, mode: state.mode === "text" ? "movie" : state.mode, compare: false });
    });
  }
  for (const tab of $$(".mode")) tab.addEventListener("click", () => navigate({ mode: tab.dataset.mode }));
  $("#compare-toggle").addEventListener("change", (event) => navigate({ compare: event.target.checked }));

  const input = $("#search-input");
  input.addEventListener("input", () => {
    clearTimeout(suggestionTimer);
    suggestionTimer = setTimeout(() => updateSuggestions(input.value), 120);
  });
  input.addEventListener("keydown", (event) => {
    const items = $$("#suggestions li[role=option]");
    if (event.key === "ArrowDown") { event.preventDefault(); highlight(activeSuggestion + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight(activeSuggestion - 1); }
    else if (event.key === "Enter") {
      event.preventDefault();
      const item = items[activeSuggestion] || items[0];
      if (item) chooseSuggestion(item);
    } else if (event.key === "Escape") hideSuggestions();
  });
  input.addEventListener("blur", () => setTimeout(hideSuggestions, 150));

  let droppedFile = null;
  $("#image-input").addEventListener("change", (event) => {
    droppedFile = null;
    searchImage(event.target.files[0]);
  });
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) {
      droppedFile = file;
      searchImage(file);
    }
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("#image-input").click(); }
  });

  $("#panel-text").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#text-input").value.trim();
    if (q) navigate({ mode: "text", q });
  });

  apply();
}

document.addEventListener("DOMContentLoaded", init);
