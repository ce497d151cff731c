// movierec web page: plain JavaScript, no build step.
"use strict";

const USER_KEY = "movierec.user";
const state = { user: null, ratings: new Map(), updates: 0 };
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
    const predicted = el("span", "predicted", `${starsText(movie.predicted_rating)} `);
    predicted.title = "predicted stars";
    predicted.append(el("b", null, movie.predicted_rating.toFixed(1)));
    info.append(predicted);
  }
  li.append(info);

  const actions = el("div", "actions");
  const stars = el("div", "stars");
  stars.setAttribute("role", "group");
  stars.setAttribute("aria-label", `Rate ${movie.title}`);
  const given = state.ratings.get(movie.movie_id);
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

async function useUser(userId) {
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
    render($("my-ratings"), mine.reverse());
    setStatus("ratings-status", mine.length ? `${mine.length} rated here.` : "None yet.");
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
    render($("similar"), answer.items, { showScore: true });
    $("similar-box").hidden = false;
    $("similar-box").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (error) {
    setStatus("recs-status", error.message, true);
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
      $("search-results").replaceChildren();
      return;
    }
    try {
      const answer = await api(`/movies?query=${encodeURIComponent(query)}&limit=20`);
      if (seq !== searchSeq) return; // a newer search is under way
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
    if (id) useUser(id);
  });
  $("new-profile").addEventListener("click", () => newProfile());
  $("search").addEventListener("input", onSearch);
  $("similar-close").addEventListener("click", () => { $("similar-box").hidden = true; });
  const saved = localStorage.getItem(USER_KEY);
  if (saved) useUser(saved);
});
