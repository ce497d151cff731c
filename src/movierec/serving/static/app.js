// movierec web page: plain JavaScript, no build step.
"use strict";

const USER_KEY = "movierec.user";
const state = {
  user: null, ratings: new Map(), updates: 0, popular: [], found: [], pending: null,
};
const $ = (id) => document.getElementById(id);

const API_KEY = "movierec.apiKey";

// A service started with API keys answers 401 without one: ask once, keep it for
// this browser session, and send it with every request.
async function api(path, options = {}, asked = false) {
  const headers = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem(API_KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && !asked) {
    // Another request may have asked meanwhile: then just use that key.
    if (sessionStorage.getItem(API_KEY) !== key) return api(path, options, true);
    const entered = window.prompt("This movierec service needs an API key:");
    if (entered) {
      sessionStorage.setItem(API_KEY, entered.trim());
      return api(path, options, true);
    }
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : response.statusText;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function starsText(value) {
  const full = Math.round(value);
  return "★".repeat(full) + "☆".repeat(Math.max(0, 5 - full));
}

function movieItem(movie, { showPredicted = false, showScore = false } = {}) {
  const li = el("li", "movie");
  li.dataset.movieId = movie.movie_id;
  const info = el("div", "info");
  info.append(el("span", "title", movie.title));
  const meta = [movie.genres.join(", ")];
  if (showScore && movie.score !== null) meta.push(`similarity ${movie.score.toFixed(2)}`);
  info.append(el("span", "meta", meta.filter(Boolean).join(" · ")));
  if (showPredicted && movie.predicted_rating !== null) {
    // Read-only, in words: what the model expects, never mistaken for your own stars.
    const predicted = el("span", "predicted", "Predicted for you: ");
    predicted.title = "the stars the ranking model expects you would give";
    predicted.append(el("b", null, `${movie.predicted_rating.toFixed(1)} ★`));
    info.append(predicted);
  }
  li.append(info);

  const actions = el("div", "actions");
  const given = state.ratings.get(movie.movie_id);
  const stars = el("div", "stars");
  stars.append(el("span", "rate-label", given !== undefined ? "Your rating" : "Rate it"));
  stars.setAttribute("role", "group");
  stars.setAttribute("aria-label", `Rate ${movie.title}`);
  for (let n = 1; n <= 5; n += 1) {
    const button = el("button", given !== undefined && n <= given ? "star on" : "star", "★");
    button.type = "button";
    button.dataset.stars = String(n);
    button.setAttribute("aria-label", `${n} star${n > 1 ? "s" : ""}`);
    button.addEventListener("click", () => rate(movie, n));
    stars.append(button);
  }
  const similar = el("button", "link similar", "similar");
  similar.type = "button";
  similar.addEventListener("click", () => showSimilar(movie));
  actions.append(stars, similar);
  li.append(actions);
  return li;
}

function render(list, movies, options) {
  list.replaceChildren(...movies.map((m) => movieItem(m, options)));
}

function setStatus(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

// Switching user starts from a clean page: nothing of the previous user stays shown.
function resetPanels() {
  $("unknown-user").hidden = true;
  $("similar-box").hidden = true;
  $("similar").replaceChildren();
  $("recs").replaceChildren();
  $("my-ratings").replaceChildren();
  $("training-ratings").replaceChildren();
  $("training-box").hidden = true;
  setStatus("recs-status", "Loading…");
}

// An id typed in the form that neither the model nor the ratings store knows: ask
// whether to start a new profile under it or to correct a typo, never guess.
async function chooseUser(userId) {
  $("unknown-user").hidden = true;
  let answer;
  try {
    answer = await api(`/users/${encodeURIComponent(userId)}/ratings`);
  } catch (error) {
    setStatus("profile-status", error.message, true);
    return;
  }
  if (answer.known_to_model || answer.ratings.length) {
    await useUser(userId);
    return;
  }
  state.pending = userId;
  $("unknown-text").textContent = `There is no user "${userId}" yet.`;
  $("unknown-new").textContent = `Start a new profile as "${userId}"`;
  $("unknown-user").hidden = false;
  setStatus("profile-status", "Unknown user id: start a new profile, or retype it.", true);
}

async function useUser(userId) {
  resetPanels();
  state.user = userId;
  localStorage.setItem(USER_KEY, userId);
  $("user-id").value = userId;
  await refreshRatings();
  await refreshRecommendations();
}

function newProfile() {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  const id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  state.ratings = new Map();
  return useUser(id);
}

async function refreshRatings() {
  try {
    const answer = await api(`/users/${encodeURIComponent(state.user)}/ratings`);
    state.ratings = new Map(answer.ratings.map((m) => [m.movie_id, m.predicted_rating]));
    const known = answer.known_to_model
      ? `known to the model (${answer.history} ratings in training)`
      : "a new profile";
    setStatus("profile-status", `User ${answer.user_id}: ${known}.`);
    const mine = answer.ratings.map((m) => ({ ...m, predicted_rating: null }));
    let training = [];
    if (answer.known_to_model) {
      const history = await api(`/users/${encodeURIComponent(state.user)}/history?k=50`);
      training = history.items;
      for (const m of training) {
        if (!state.ratings.has(m.movie_id)) state.ratings.set(m.movie_id, m.predicted_rating);
      }
    }
    render($("my-ratings"), mine.reverse());
    const here = mine.length ? `${mine.length} rated here.` : "None rated here yet.";
    setStatus("ratings-status", here);
    render($("training-ratings"), training.map((m) => ({ ...m, predicted_rating: null })));
    $("training-title").textContent =
      `Rated before: ${answer.history} in training` +
      (training.length < answer.history ? ` (best ${training.length} shown)` : "");
    $("training-box").hidden = !training.length;
    render($("popular"), state.popular);
    render($("search-results"), state.found);  // stars as this user gave them
  } catch (error) {
    setStatus("profile-status", error.message, true);
  }
}

async function refreshRecommendations() {
  const list = $("recs");
  try {
    const answer = await api(`/users/${encodeURIComponent(state.user)}/recommendations?k=10`);
    render(list, answer.items, { showPredicted: true });
    const ms = answer.timings_ms.total.toFixed(0);
    setStatus("recs-status", `Top ${answer.items.length}, answered in ${ms} ms.`);
  } catch (error) {
    list.replaceChildren();
    if (error.status === 404) {
      setStatus("recs-status", "Rate a few movies to get recommendations.");
    } else {
      setStatus("recs-status", error.message, true);
    }
  }
  state.updates += 1;
  list.dataset.updates = String(state.updates);
}

async function rate(movie, stars) {
  if (!state.user) await newProfile();
  try {
    await api(`/users/${encodeURIComponent(state.user)}/ratings`, {
      method: "POST",
      body: JSON.stringify({ movie_id: movie.movie_id, rating: stars }),
    });
  } catch (error) {
    setStatus("profile-status", error.message, true);
    return;
  }
  state.ratings.set(movie.movie_id, stars);
  document.querySelectorAll(`li[data-movie-id="${CSS.escape(movie.movie_id)}"] .star`)
    .forEach((b) => b.classList.toggle("on", Number(b.dataset.stars) <= stars));
  await refreshRatings();
  await refreshRecommendations();
}

async function showSimilar(movie) {
  try {
    const answer = await api(`/movies/${encodeURIComponent(movie.movie_id)}/similar?k=8`);
    $("similar-title").textContent = answer.movie.title;
    $("similar-note").textContent = `similarity: ${answer.score_meaning.replace(/^score = /, "")}`;
    render($("similar"), answer.items, { showScore: true });
    $("similar-box").hidden = false;
    $("similar-box").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (error) {
    setStatus("recs-status", error.message, true);
  }
}

async function loadPopular() {
  try {
    const answer = await api("/popular?k=12");
    state.popular = answer.items;
    render($("popular"), state.popular);
    render($("search-results"), state.found);  // stars as this user gave them
  } catch (error) {
    $("popular").replaceChildren(el("li", "status error", error.message));
  }
}

let searchTimer = null;
let searchSeq = 0;
function onSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const query = $("search").value.trim();
    const seq = ++searchSeq;
    if (!query) {
      state.found = [];
      $("search-results").replaceChildren();
      return;
    }
    try {
      const answer = await api(`/movies?query=${encodeURIComponent(query)}&limit=20`);
      if (seq !== searchSeq) return; // a newer search is under way
      state.found = answer.items;
      render($("search-results"), answer.items);
      if (!answer.items.length) $("search-results").append(el("li", "status", "No match."));
    } catch (error) {
      $("search-results").replaceChildren(el("li", "status error", error.message));
    }
  }, 200);
}

document.addEventListener("DOMContentLoaded", () => {
  $("profile-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("user-id").value.trim();
    if (id) chooseUser(id);
  });
  $("unknown-new").addEventListener("click", () => {
    if (state.pending) useUser(state.pending);
  });
  $("unknown-retype").addEventListener("click", () => {
    $("unknown-user").hidden = true;
    setStatus("profile-status", "Enter a user id, or start a new profile.");
    $("user-id").focus();
    $("user-id").select();
  });
  loadPopular();
  $("new-profile").addEventListener("click", () => newProfile());
  $("search").addEventListener("input", onSearch);
  $("similar-close").addEventListener("click", () => { $("similar-box").hidden = true; });
  const saved = localStorage.getItem(USER_KEY);
  if (saved) useUser(saved);
});
