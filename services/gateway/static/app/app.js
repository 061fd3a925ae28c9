// The member app's page: logs in (auth.js), reads the member's graph (api.js), keeps the balance
// live, and draws it all. DOM built with textContent and createElement only: no markup from data.

import { Auth, LoggedOut } from "./auth.js";
import { Api, ApiError, HISTORY, OVERVIEW, SPEND_CODE, UNLINK, UPDATE_SETTINGS } from "./api.js";
import { qrSvg } from "./qr.js";

const PAGE_SIZE = 10;
const KINDS = {
  EARN: "Earned",
  REDEEM: "Spent",
  REVERSE: "Refund: points taken back",
  CANCEL_REDEMPTION: "Spend cancelled: points back",
  EXPIRE: "Expired",
};
const STATUSES = {
  PENDING: "pending",
  AVAILABLE: "available",
  EXPIRED: "expired",
  REVERSED: "refunded",
  CANCELLED: "cancelled",
};
const HOW = { ENROLLED: "enrolled", CARD_PRESENTED: "card presented" };
const LIVE_STATES = {
  live: "Live: changes show here as they happen.",
  connecting: "Connecting for live updates…",
  offline: "Live updates interrupted; reconnecting…",
};

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat(undefined);
const dates = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const days = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

const state = { cursor: null, countdown: null, stopLive: null, refetching: null };

function points(value) {
  return numbers.format(Number(value));
}

function humanize(name) {
  const text = String(name).toLowerCase().replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function show(view) {
  $("signed-out").hidden = view !== "signed-out";
  $("signed-in").hidden = view !== "signed-in";
  $("loading").hidden = view !== "loading";
  $("who").hidden = view !== "signed-in";
}

// ---- drawing -------------------------------------------------------------------------------

function drawBalance(balance) {
  $("available").textContent = points(balance.available);
  $("pending").textContent = points(balance.pending);
  $("held").textContent = points(balance.held);
}

function transactionRow({ node }) {
  const signed = Number(node.points);
  const status = STATUSES[node.status];
  return el(
    "li",
    { "data-id": node.id },
    el(
      "span",
      { class: "what" },
      el("strong", {}, node.partner?.name ?? "Coalition"),
      el(
        "span",
        { class: "muted small" },
        `${KINDS[node.kind] ?? humanize(node.kind)}${status ? ` · ${status}` : ""} · `,
        el("time", { dateTime: node.occurredAt }, dates.format(new Date(node.occurredAt)))
      )
    ),
    el("span", { class: `points${signed > 0 ? " plus" : ""}` }, `${signed > 0 ? "+" : ""}${points(signed)}`)
  );
}

function drawHistory(connection, append) {
  const list = $("history");
  if (!append) list.replaceChildren();
  list.append(...connection.edges.map(transactionRow));
  $("history-none").hidden = list.children.length > 0;
  state.cursor = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
  $("more").hidden = state.cursor === null;
}

function drawExpiring(lots) {
  $("expiring").replaceChildren(
    ...lots.map((lot) =>
      el(
        "li",
        {},
        el("span", {}, "on ", el("time", { dateTime: lot.expiresAt }, days.format(new Date(lot.expiresAt)))),
        el("span", { class: "points" }, `${points(lot.points)} points`)
      )
    )
  );
  $("expiring-none").hidden = lots.length > 0;
}

function drawLinks(links) {
  $("links").replaceChildren(
    ...links.map((link) => {
      const button = el("button", { type: "button", class: "quiet" }, "Unlink");
      button.setAttribute("aria-label", `Unlink ${link.partner.name}`);
      button.addEventListener("click", () => unlink(link.partner, button));
      return el(
        "li",
        {},
        el(
          "span",
          { class: "what" },
          el("strong", {}, link.partner.name),
          el(
            "span",
            { class: "muted small" },
            `${HOW[link.how] ?? humanize(link.how)} · since `,
            el("time", { dateTime: link.linkedAt }, days.format(new Date(link.linkedAt)))
          )
        ),
        button
      );
    })
  );
  $("links-none").hidden = links.length > 0;
}

function drawOverview(me) {
  $("member-number").textContent = `Member ${me.memberNumber}`;
  drawBalance(me.balance);
  drawExpiring(me.expiringPoints);
  drawHistory(me.transactions, false);
  drawLinks(me.links);
  $("require-code").checked = Boolean(me.settings.requireCodeToSpend);
}

// ---- actions -------------------------------------------------------------------------------

let api;
let auth;

function failed(error) {
  if (error instanceof LoggedOut) {
    signedOut("Your session has ended. Please sign in again.");
    return;
  }
  notice(error instanceof ApiError ? error.message : "Something went wrong. Please try again.");
  console.warn(error);
}

/** Reads everything again; calls that overlap share one request. */
function refetch() {
  if (!state.refetching) {
    state.refetching = api
      .request(OVERVIEW, { first: PAGE_SIZE })
      .then((data) => drawOverview(data.me))
      .finally(() => {
        state.refetching = null;
      });
  }
  return state.refetching;
}

async function more() {
  const button = $("more");
  button.disabled = true;
  try {
    const data = await api.request(HISTORY, { first: PAGE_SIZE, after: state.cursor });
    drawHistory(data.me.transactions, true);
  } catch (error) {
    failed(error);
  } finally {
    button.disabled = false;
  }
}

async function unlink(partner, button) {
  const sure = window.confirm(
    `Unlink ${partner.name}? It will no longer see you or be able to spend your points. ` +
      "Presenting your card there again links it again."
  );
  if (!sure) return;
  button.disabled = true;
  try {
    const data = await api.request(UNLINK, { input: { partnerId: partner.id } });
    const [error] = data.unlinkPartner.userErrors;
    if (error) notice(error.message);
    else notice(`${partner.name} is unlinked.`);
    await refetch();
    $("links-heading").focus(); // the button pressed is gone with its row
  } catch (error) {
    failed(error);
  } finally {
    button.disabled = false;
  }
}

async function toggleRequireCode(event) {
  const box = event.target;
  const wanted = box.checked;
  box.disabled = true;
  $("settings-state").textContent = "Saving…";
  try {
    const data = await api.request(UPDATE_SETTINGS, { input: { requireCodeToSpend: wanted } });
    const [error] = data.updateMemberSettings.userErrors;
    if (error) throw new ApiError(error.message, error.code);
    $("settings-state").textContent = wanted
      ? "Saved: spends now need a code from this app."
      : "Saved: partners you are linked to can spend without a code.";
  } catch (error) {
    box.checked = !wanted;
    $("settings-state").textContent = "";
    failed(error);
  } finally {
    box.disabled = false;
  }
}

function stopCountdown() {
  clearInterval(state.countdown);
  state.countdown = null;
}

async function showSpendCode() {
  const button = $("show-code");
  const problem = $("code-error");
  button.disabled = true;
  problem.hidden = true;
  try {
    const data = await api.request(SPEND_CODE);
    const payload = data.createSpendCode;
    const [error] = payload.userErrors;
    if (error || !payload.code) throw new ApiError(error?.message ?? "No code was issued.", error?.code);
    $("spend-code").textContent = payload.code;
    $("qr").replaceChildren(qrSvg(payload.code));
    $("code-panel").hidden = false;
    const expiresAt = new Date(payload.expiresAt).getTime();
    const tick = () => {
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      const minutes = Math.floor(left / 60);
      const seconds = String(left % 60).padStart(2, "0");
      $("countdown").textContent = left > 0 ? `Valid for ${minutes}:${seconds}` : "Expired";
      if (left === 0) {
        stopCountdown();
        $("code-panel").hidden = true;
        problem.textContent = "The code expired. Show a new one when you are at the till.";
        problem.hidden = false;
        button.textContent = "Show spend code";
      }
    };
    stopCountdown();
    tick();
    state.countdown = setInterval(tick, 1000);
    button.textContent = "Show a new code";
  } catch (error) {
    if (error instanceof LoggedOut) failed(error);
    else {
      problem.textContent = error.message;
      problem.hidden = false;
    }
  } finally {
    button.disabled = false;
  }
}

// ---- session -------------------------------------------------------------------------------

function signedOut(message) {
  state.stopLive?.();
  state.stopLive = null;
  stopCountdown();
  auth?.logout();
  notice(message || "");
  show("signed-out");
}

/** "Sign out": the tokens are forgotten at once, and the server is asked to end the session
 * (the refresh token revoked, and with it every access token of this sign-in), so a copy of the
 * tokens left anywhere (a backup of the tab, a shared computer's memory) is worth nothing. */
async function signOut() {
  const button = $("sign-out");
  button.disabled = true;
  state.stopLive?.();
  state.stopLive = null;
  stopCountdown();
  const ended = await auth.signOut();
  button.disabled = false;
  signedOut(
    ended
      ? "You are signed out."
      : "You are signed out on this device, but the server could not be reached to end the session."
  );
}

async function signedIn() {
  show("loading");
  await refetch();
  show("signed-in");
  auth.schedule();
  state.stopLive = api.live({
    onEvent: (change) => {
      // The event carries the new balance: show it at once, then the rest (history, expiry).
      drawBalance(change);
      refetch().catch(failed);
    },
    onState: (name) => {
      $("live-state").textContent = LIVE_STATES[name];
    },
    // After every (re)connection: whatever changed while the socket was down.
    onConnected: () => refetch().catch(failed),
  });
}

async function start() {
  let config;
  try {
    config = await (await fetch("config.json", { cache: "no-store" })).json();
  } catch {
    notice("The app cannot reach its server. Please reload the page.");
    return;
  }
  if (!config.clientId) {
    notice("This server has no member app configured (MEMBER_APP_CLIENT_ID is not set).");
    show("signed-out");
    $("login").disabled = true;
    return;
  }
  auth = new Auth(config.clientId, config.scope || "member");
  api = new Api(auth);
  auth.onLoggedOut = () => signedOut("Your session has ended. Please sign in again.");

  $("login").addEventListener("click", () => auth.login().catch(failed));
  $("sign-out").addEventListener("click", () => signOut().catch(failed));
  $("more").addEventListener("click", more);
  $("show-code").addEventListener("click", showSpendCode);
  $("require-code").addEventListener("change", toggleRequireCode);

  const params = new URLSearchParams(location.search);
  try {
    show("loading");
    await auth.completeLogin(params);
  } catch (error) {
    signedOut(error.message);
    return;
  } finally {
    // The code is single-use and now spent (or refused): keep it out of the address bar and history.
    if (params.has("code") || params.has("error")) history.replaceState(null, "", location.pathname);
  }
  if (!auth.isLoggedIn()) {
    show("signed-out");
    return;
  }
  try {
    await signedIn();
  } catch (error) {
    if (error instanceof LoggedOut) signedOut("Your session has ended. Please sign in again.");
    else {
      show("signed-in");
      failed(error);
    }
  }
}

start();
