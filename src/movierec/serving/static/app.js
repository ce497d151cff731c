// movierec web page: plain JavaScript, no build step.
"use strict";

const USER_KEY = "movierec.user";
// Popular movies shown at once, and how many the page keeps to refill their places.
const POPULAR_SHOWN = 12;
const POPULAR_POOL = 48;
// A known user's training ratings listed before "Show all".
const TRAINING_SHOWN = 5;
// Recommendations per page: the first page, then each "More" click.
const RECS_PAGE = 10;
// What each feedback button says and what the page then lists it as.
const FEEDBACK = { "watched": "watched", "not-interested": "not interested" };
// A card that just took a rated movie's place ignores clicks this long (ms): a quick
// second click meant for the movie just rated must not rate the newcomer.
const FRESH_MS = 400;
const state = {
  user: null, ratings: new Map(), updates: 0, found: [], pending: null,
  popularPool: [], popularSlots: [], fresh: new Map(),
  canRecommend: false, training: [], history: 0, showAllTraining: false,
  feedback: new Map(), recsShown: [],
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
  const arrived = state.fresh.get(movie.movie_id);
  if (arrived !== undefined) li.classList.add("fresh");
  const info = el("div", "info");
  const title = el("span", "title", movie.title);
  title.title = movie.title;  // cut to one line: the full title on hover
  info.append(title);
  const meta = [movie.genres.join(", ")];
  if (showScore && movie.score !== null) meta.push(`similarity ${movie.score.toFixed(2)}`);
  if (showScore && typeof movie.co_raters === "number") meta.push(`${movie.co_raters} rated both`);
  const metaText = meta.filter(Boolean).join(" · ");
  const metaNode = el("span", "meta", metaText);
  metaNode.title = metaText;
  info.append(metaNode);
  if (showPredicted && movie.predicted_rating !== null) {
    // Read-only, in words: what the model expects, never mistaken for your own stars.
    const predicted = el("span", "predicted", "Predicted for you: ");
    predicted.title = "the stars the ranking model expects you would give";
    predicted.append(el("b", null, `${movie.predicted_rating.toFixed(1)} ★`));
    info.append(predicted);
  }
  if (Array.isArray(movie.because)) info.append(becauseLine(movie.because));
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
    button.addEventListener("click", () => {
      if (arrived !== undefined && performance.now() - arrived < FRESH_MS) return;
      rate(movie, n, button.closest("ul"));
    });
    stars.append(button);
  }
  const similar = el("button", "link similar", "similar");
  similar.type = "button";
  similar.addEventListener("click", () => showSimilar(movie));
  actions.append(stars, similar);
  li.append(actions);
  // Feedback without stars: the movie leaves every list, for good, until undone.
  const feedback = el("div", "feedback");
  for (const [kind, label] of Object.entries(FEEDBACK)) {
    const button = el("button", "link", label);
    button.type = "button";
    button.dataset.feedback = kind;
    button.setAttribute("aria-label", `${label}: ${movie.title}`);
    button.addEventListener("click", () => {
      if (arrived !== undefined && performance.now() - arrived < FRESH_MS) return;
      giveFeedback(movie, kind);
    });
    feedback.append(button);
  }
  li.append(feedback);
  return li;
}

// A feedback row given here, with the button that deletes it again.
function feedbackItem(movie, kind) {
  const li = el("li", "movie");
  li.dataset.movieId = movie.movie_id;
  const info = el("div", "info");
  const title = el("span", "title", movie.title);
  title.title = movie.title;
  info.append(title, el("span", "meta", FEEDBACK[kind]));
  const undo = el("button", "link undo", "undo");
  undo.type = "button";
  undo.setAttribute("aria-label", `undo ${FEEDBACK[kind]}: ${movie.title}`);
  undo.addEventListener("click", () => undoFeedback(movie));
  li.append(info, undo);
  return li;
}

// "Because you rated Star Wars 5 ★, ...": the ratings that raised this movie's score
// most (the service's `because`). One line on every explained card, empty when no
// rating raised it, so the cards stay one height.
function becauseLine(reasons) {
  const line = el("span", "because");
  if (reasons.length) {
    line.append("Because you rated ");
    reasons.forEach((reason, i) => {
      if (i) line.append(", ");
      line.append(el("b", null, reason.title), ` ${reason.rating} ★`);
    });
  }
  line.title = line.textContent;
  return line;
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
  state.training = [];
  state.showAllTraining = false;
  state.canRecommend = false;
  $("unknown-user").hidden = true;
  $("similar-box").hidden = true;
  $("similar").replaceChildren();
  $("recs").replaceChildren();
  $("my-ratings").replaceChildren();
  $("my-feedback").replaceChildren();
  $("recs-more").hidden = true;
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
  await loadPopular();  // without the movies this user rated
  await refreshRecommendations();
}

function newProfile() {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  const id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  state.ratings = new Map();
  state.feedback = new Map();
  return useUser(id);
}

async function refreshRatings() {
  try {
    const answer = await api(`/users/${encodeURIComponent(state.user)}/ratings`);
    const given = await api(`/users/${encodeURIComponent(state.user)}/feedback`);
    state.ratings = new Map(answer.ratings.map((m) => [m.movie_id, m.predicted_rating]));
    state.feedback = new Map(given.items.map((m) => [m.movie_id, m.type]));
    // A new profile without ratings has nothing to recommend yet (asking would be a 404);
    // a movie it watched stands in for a rating.
    state.canRecommend = answer.known_to_model || answer.ratings.length > 0 ||
      given.items.some((m) => m.type === "watched");
    const known = answer.known_to_model
      ? `known to the model (${answer.history} ratings in training)`
      : "a new profile";
    setStatus("profile-status", `User ${answer.user_id}: ${known}.`);
    const mine = answer.ratings.map((m) => ({ ...m, predicted_rating: null }));
    state.training = [];
    state.history = answer.history;
    if (answer.known_to_model) {
      const history = await api(`/users/${encodeURIComponent(state.user)}/history?k=100`);
      state.training = history.items;
      for (const m of state.training) {
        if (!state.ratings.has(m.movie_id)) state.ratings.set(m.movie_id, m.predicted_rating);
      }
    }
    render($("my-ratings"), mine.reverse());
    $("my-feedback").replaceChildren(...given.items.reverse().map((m) => feedbackItem(m, m.type)));
    $("feedback-box").hidden = !given.items.length;
    const here = mine.length ? `${mine.length} rated here.` : "None rated here yet.";
    setStatus("ratings-status", here);
    renderTraining();
    render($("search-results"), state.found);  // stars as this user gave them
  } catch (error) {
    setStatus("profile-status", error.message, true);
  }
}

// A known user's training ratings: the best few, the rest behind "Show all".
function renderTraining() {
  const all = state.training;
  const shown = state.showAllTraining ? all : all.slice(0, TRAINING_SHOWN);
  render($("training-ratings"), shown.map((m) => ({ ...m, predicted_rating: null })));
  $("training-title").textContent =
    `Rated before: ${state.history} in training` +
    (all.length < state.history ? ` (the best ${all.length} listed)` : "");
  const more = $("training-more");
  more.hidden = all.length <= TRAINING_SHOWN;
  more.textContent = state.showAllTraining ? "Show fewer" : `Show all ${all.length}`;
  more.setAttribute("aria-expanded", String(state.showAllTraining));
  $("training-box").hidden = !all.length;
}

async function refreshRecommendations() {
  const list = $("recs");
  state.recsShown = [];
  $("recs-more").hidden = true;
  if (!state.canRecommend) {
    list.replaceChildren();
    setStatus("recs-status", "Rate a few movies to get recommendations.");
    state.updates += 1;
    list.dataset.updates = String(state.updates);
    return;
  }
  try {
    const answer = await api(
      `/users/${encodeURIComponent(state.user)}/recommendations?k=${RECS_PAGE}&explain=true`);
    render(list, answer.items, { showPredicted: true });
    state.recsShown = answer.items.map((m) => m.movie_id);
    $("recs-more").hidden = answer.items.length < RECS_PAGE;
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

// The next page of the same list: the service's offset never repeats or skips a movie.
async function moreRecommendations() {
  const list = $("recs");
  const offset = state.recsShown.length;
  try {
    const answer = await api(`/users/${encodeURIComponent(state.user)}/recommendations` +
      `?k=${RECS_PAGE}&offset=${offset}&explain=true`);
    list.append(...answer.items.map((m) => movieItem(m, { showPredicted: true })));
    state.recsShown.push(...answer.items.map((m) => m.movie_id));
    $("recs-more").hidden = answer.items.length < RECS_PAGE;
    setStatus("recs-status", `Top ${state.recsShown.length}.`);
  } catch (error) {
    setStatus("recs-status", error.message, true);
  }
  state.updates += 1;
  list.dataset.updates = String(state.updates);
}

async function giveFeedback(movie, kind) {
  if (!state.user) await newProfile();
  try {
    await api(`/users/${encodeURIComponent(state.user)}/feedback`, {
      method: "POST",
      body: JSON.stringify({ movie_id: movie.movie_id, type: kind }),
    });
  } catch (error) {
    setStatus("profile-status", error.message, true);
    return;
  }
  state.feedback.set(movie.movie_id, kind);
  fillPopular();
  state.found = state.found.filter((m) => m.movie_id !== movie.movie_id);
  await refreshRatings();
  await refreshRecommendations();
}

async function undoFeedback(movie) {
  try {
    await api(`/users/${encodeURIComponent(state.user)}/feedback/` +
      encodeURIComponent(movie.movie_id), { method: "DELETE" });
  } catch (error) {
    setStatus("profile-status", error.message, true);
  }
  state.feedback.delete(movie.movie_id);
  await refreshRatings();
  await refreshRecommendations();
}

// Rating never moves what is under the pointer: the rated card's place in the popular
// list is taken by the next popular movie, cards are all one height, and should the
// list still have moved (a first recommendation list appearing above it on a phone),
// the page scrolls by as much.
async function rate(movie, stars, list = null) {
  const sticky = list && getComputedStyle(list.closest("section")).position === "sticky";
  const pinned = list && !sticky ? list : null;
  const top = pinned ? pinned.getBoundingClientRect().top : 0;
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
  state.canRecommend = true;
  document.querySelectorAll(`li[data-movie-id="${CSS.escape(movie.movie_id)}"] .star`)
    .forEach((b) => b.classList.toggle("on", Number(b.dataset.stars) <= stars));
  fillPopular();
  await refreshRatings();
  await refreshRecommendations();
  if (pinned) {
    const moved = pinned.getBoundingClientRect().top - top;
    if (Math.abs(moved) >= 1) window.scrollBy(0, moved);
  }
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

// The most rated movies this user has not rated (the server leaves out what it knows
// they rated; the page, what they rate meanwhile), in fresh places.
async function loadPopular() {
  const who = state.user ? `&user_id=${encodeURIComponent(state.user)}` : "";
  try {
    const answer = await api(`/popular?k=${POPULAR_POOL}${who}`);
    state.popularPool = answer.items;
    state.popularSlots = [];
    fillPopular();
  } catch (error) {
    $("popular").replaceChildren(el("li", "status error", error.message));
  }
}

// Popular movies not rated: one that gets rated gives its place, in place, to the next
// movie of the pool; the others stay where they are.
function fillPopular() {
  const unrated = (m) => !state.ratings.has(m.movie_id) && !state.feedback.has(m.movie_id);
  const kept = new Set(state.popularSlots.filter(unrated).map((m) => m.movie_id));
  const spare = state.popularPool.filter((m) => unrated(m) && !kept.has(m.movie_id));
  const first = !state.popularSlots.length;
  const slots = [];
  state.fresh = new Map();
  const now = performance.now();
  const take = () => {
    const next = spare.shift();
    if (!first) state.fresh.set(next.movie_id, now);
    slots.push(next);
  };
  for (const movie of state.popularSlots) {
    if (unrated(movie)) slots.push(movie);
    else if (spare.length) take();
  }
  while (slots.length < POPULAR_SHOWN && spare.length) take();
  state.popularSlots = slots;
  render($("popular"), slots);
  state.fresh = new Map();
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

// How old the live model is: "Model trained 2026-12-02 03:29 UTC on 4,010 ratings".
// Fetched again now and then, as `serve --retrain-every` swaps new models in.
const MODEL_AGE_MS = 5 * 60 * 1000;
async function showModelAge() {
  try {
    const v = await api("/version");
    if (!v.trained_at) return;
    const when = v.trained_at.replace("T", " ").replace(/:\d\dZ$/, " UTC");
    let text = `Model trained ${when} on ${v.trained_on_ratings.toLocaleString("en-US")} ratings`;
    if (v.trained_on_stored_ratings) {
      text += ` (${v.trained_on_stored_ratings.toLocaleString("en-US")} given here)`;
    }
    $("model-age").textContent = `${text}.`;
    $("model-age").title = v.retrain
      ? `retrained every ${v.retrain.every_seconds} s; last run: ${v.retrain.last_result ?? "none yet"}`
      : "";
  } catch (error) {
    $("model-age").textContent = "";  // the footer is a note: no error shown there
  }
}

document.addEventListener("DOMContentLoaded", () => {
  showModelAge();
  setInterval(showModelAge, MODEL_AGE_MS);
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
  $("new-profile").addEventListener("click", () => newProfile());
  $("training-more").addEventListener("click", () => {
    state.showAllTraining = !state.showAllTraining;
    renderTraining();
  });
  $("search").addEventListener("input", onSearch);
  $("recs-more").addEventListener("click", () => moreRecommendations());
  $("similar-close").addEventListener("click", () => { $("similar-box").hidden = true; });
  const saved = localStorage.getItem(USER_KEY);
  if (saved) useUser(saved);
  else loadPopular();
});
