// The page the server answers on `GET /`: a chat on one channel through `ws-channels/client`,
// served by the same listener as the WebSocket (so one origin), as plain ES modules.
import { Client } from "/client.js";

const MAX_MESSAGES = 500;
const MAX_ACTIVITY = 50;
const MAX_CELLS = 120;
const OFFLINE_MS = 5000;

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const ui = {
  state: $("state"),
  who: $("who"),
  name: $("name"),
  channel: $("channel"),
  title: $("title"),
  messages: $("messages"),
  say: $("say"),
  message: $("message"),
  send: $("send"),
  note: $("note"),
  members: $("members"),
  partial: $("partial"),
  activity: $("activity"),
  banner: $("banner"),
  drop: $("drop"),
  offline: $("offline"),
  tickerPanel: $("ticker-panel"),
  ticker: $("ticker"),
};

/** What the server tells the page: whether it keeps history, and the ticker's channel. */
const config = await fetch("/page/config.json").then((response) => response.json());
const params = new URL(location.href).searchParams;
const token = params.get("token") ?? undefined;

/** Until when a simulated offline refuses every connection, in ms since the epoch. */
let offlineUntil = 0;
/**
 * The browser's WebSocket, except while "offline": then each new one is closed while still
 * connecting, which the browser reports as a failed connection (close 1006), as a lost network does.
 */
class PageSocket extends WebSocket {
  constructor(url) {
    super(url);
    if (Date.now() < offlineUntil) this.close();
  }
}

let client;
/** The id the client connects with: another name is another client. */
let clientName;
let room;
let tickerRoom;
let countdown;

function text(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function append(list, item, max) {
  list.append(item);
  while (list.children.length > max) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function element(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

function showState({ state, attempt, delay, code, reason }) {
  clearInterval(countdown);
  ui.state.dataset.state = state;
  if (state !== "open") delete ui.messages.dataset.joined;
  const why = code === undefined ? "" : ` (${code}${reason ? ` ${reason}` : ""})`;
  if (state === "reconnecting") {
    const due = Date.now() + (delay ?? 0);
    const tick = () => {
      const left = Math.max(0, due - Date.now());
      const offline = Date.now() < offlineUntil ? ", offline" : "";
      ui.state.textContent = `reconnecting: attempt ${attempt}, next in ${(left / 1000).toFixed(1)} s${offline}${why}`;
    };
    tick();
    countdown = setInterval(tick, 100);
  } else if (state === "closed") ui.state.textContent = `closed${why}`;
  else ui.state.textContent = state;
  const connected = state !== "closed";
  ui.drop.disabled = ui.offline.disabled = !connected;
}

function showMembers() {
  ui.members.replaceChildren();
  const ids = [...room.members()].sort(([a], [b]) => a.localeCompare(b));
  for (const [id, refs] of ids) {
    const item = element("li", id === ui.name.value ? "me" : "", id === "" ? "(no id)" : id);
    if (refs.size > 1) item.append(element("span", "count", ` x${refs.size}`));
    ui.members.append(item);
  }
  ui.partial.hidden = !room.partial; // the server's last snapshot could not reach every node
}

function showActivity({ joins, leaves }) {
  for (const [entries, verb] of [
    [joins, "joined"],
    [leaves, "left"],
  ]) {
    for (const { id } of entries) append(ui.activity, element("li", verb, `${id ?? "(no id)"} ${verb}`), MAX_ACTIVITY);
  }
  showMembers();
}

/** Every say of the chat room; the ones replayed by a recovery are marked. */
function listen(joined) {
  let replaying = 0;
  room.on("joined", ({ recovered, missed }) => {
    ui.messages.dataset.joined = room.channel; // a hook: says from here on reach this page
    replaying = missed.length;
    if (joined.first) joined.first = false;
    else if (config.history && !recovered) {
      ui.banner.textContent = "Reconnected, but the server no longer had everything said meanwhile: some messages are missing above.";
      ui.banner.hidden = false;
    }
    showMembers();
  });
  room.on("message", ({ say, from, offset }) => {
    const item = element("li", replaying > 0 ? "replayed" : "");
    item.append(element("span", "from", from ?? "(no id)"), element("span", "text", text(say)));
    if (replaying > 0) {
      replaying--;
      item.append(element("span", "tag", "replayed"));
    }
    if (offset !== undefined) item.title = `offset ${offset}`;
    append(ui.messages, item, MAX_MESSAGES);
  });
  room.on("presence", showActivity);
  room.on("closed", ({ reason }) => {
    if (reason !== "left") ui.note.textContent = `not in ${room.channel}: ${reason}`;
  });
}

/** The demo ticker: one numbered cell per say; a number skipped shows as a hole. */
function listenTicker() {
  let replaying = 0;
  let last;
  tickerRoom.on("joined", ({ missed }) => {
    replaying = missed.length;
  });
  tickerRoom.on("message", ({ say }) => {
    if (typeof say !== "number") return;
    if (last !== undefined && say > last + 1) {
      const hole = say - last - 1;
      append(ui.ticker, element("li", "hole", hole === 1 ? `${last + 1}` : `${last + 1}-${say - 1}`), MAX_CELLS);
    }
    last = say;
    append(ui.ticker, element("li", replaying > 0 ? "replayed" : "", String(say)), MAX_CELLS);
    if (replaying > 0) replaying--;
  });
}

function join() {
  const name = ui.name.value.trim();
  const channel = ui.channel.value.trim();
  if (name === "" || channel === "") return;
  if (client === undefined || clientName !== name) {
    client?.close();
    client = new Client(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`, {
      WebSocket: PageSocket,
      id: name,
      ...(token !== undefined && { token }),
    });
    clientName = name;
    client.on("state", showState);
    showState({ state: client.state, attempt: 0 });
    room = undefined;
    tickerRoom = undefined;
  }
  if (room?.channel !== channel) {
    room?.leave();
    ui.messages.replaceChildren();
    ui.activity.replaceChildren();
    ui.banner.hidden = true;
    ui.note.textContent = "";
    room = client.join(channel, { presence: true, recover: config.history });
    listen({ first: true });
  }
  if (config.ticker !== null && tickerRoom === undefined) {
    ui.tickerPanel.hidden = false;
    ui.ticker.replaceChildren();
    tickerRoom = client.join(config.ticker, { recover: config.history });
    listenTicker();
  }
  ui.title.textContent = `messages in ${channel}`;
  ui.message.disabled = ui.send.disabled = false;
  history.replaceState(null, "", `?${new URLSearchParams({ name, channel, ...(token !== undefined && { token }) })}`);
  showMembers();
  ui.message.focus();
}

/** Cuts the socket without a leave; the client reconnects and rejoins (with history: recovers). */
function drop() {
  client?.drop();
}

ui.who.addEventListener("submit", (event) => {
  event.preventDefault();
  join();
});
ui.say.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = ui.message.value;
  if (value === "" || room === undefined) return;
  ui.message.value = "";
  room.say(value).catch((error) => {
    ui.note.textContent = `not sent: ${error.message}`;
  });
});
ui.drop.addEventListener("click", drop);
ui.offline.addEventListener("click", () => {
  offlineUntil = Date.now() + OFFLINE_MS;
  drop();
  // the network "comes back": the client tries at once on the browser's online event
  setTimeout(() => window.dispatchEvent(new Event("online")), OFFLINE_MS);
});

ui.name.value = params.get("name") ?? "";
ui.channel.value = params.get("channel") ?? ui.channel.value;
if (params.has("name") && params.has("channel")) join();
else ui.name.focus();
