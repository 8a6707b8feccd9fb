// The dataset browser (glan/dataset/browse): data/index.js and every file it loads call glanBrowse.
"use strict";
const glanBrowse = (() => {
  const state = { index: null, subjects: {}, removed: {}, waiting: {}, shown: null };
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key === "html") node.innerHTML = value;  // only answers rendered at build time, raw HTML escaped
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  };
  const money = (x) => "$" + x.toFixed(4);
  const counts = (c) =>
    `${c.subjects} subjects · ${c.sessions} sessions · ${c.questions} questions · ${c.kept} kept · ${c.removed} removed · ` +
    `${money(c.cost)} · ${c.prompt_tokens.toLocaleString()} in / ${c.completion_tokens.toLocaleString()} out tokens`;

  function tree(nodes) {
    const root = { children: {}, totals: null };
    for (const [id, node] of Object.entries(nodes)) {
      let level = root;
      for (const name of node.path.slice(0, -1)) level = level.children[name] ??= { children: {}, leaves: [] };
      (level.leaves ??= []).push([id, node]);
    }
    const sum = (level) => {
      const total = { subjects: 0, sessions: 0, questions: 0, kept: 0, removed: 0, cost: 0, prompt_tokens: 0, completion_tokens: 0 };
      const add = (c) => { for (const key in total) total[key] += c[key]; };
      for (const child of Object.values(level.children)) add(sum(child));
      for (const [, node] of level.leaves ?? []) add(node);
      return (level.totals = total);
    };
    sum(root);
    const draw = (level) => {
      const items = [];
      for (const [name, child] of Object.entries(level.children)) {
        items.push(el("details", { "data-name": name }, el("summary", {}, name, el("span", { class: "counts", text: counts(child.totals) })), ...draw(child)));
      }
      for (const [id, node] of level.leaves ?? []) {
        const link = el("a", { class: "node", href: "#" + new URLSearchParams({ node: id }), "data-node": id }, node.name);
        items.push(el("div", {}, link, el("span", { class: "counts", text: counts(node) })));
      }
      return items;
    };
    $("tree").replaceChildren(...draw(root));
  }

  // A data file, loaded once with <script src> (a page opened from disk may load scripts, not fetch files).
  function loaded(file) {
    if (!state.waiting[file]) {
      let resolve;
      const promise = new Promise((done) => { resolve = done; });
      state.waiting[file] = { promise, resolve };
      document.body.append(el("script", { src: "data/" + file }));
    }
    return state.waiting[file].promise;
  }
  // A discipline with why its removed records were removed; a subject's records.
  const load = (id) => Promise.all([loaded(`nodes/${id}/node.js`), loaded(`removed/${id}.js`)]).then(([node]) => node);
  const subjectOf = (id, n) => loaded(`nodes/${id}/subject-${n}.js`);

  function removal(record) {
    return state.removed[record.id];
  }

  // A linked discipline is shown in the tree: its field and sub-field opened, its link marked.
  function reveal(id) {
    for (const link of document.querySelectorAll("#tree a.current")) link.classList.remove("current");
    const link = document.querySelector(`#tree a[data-node="${CSS.escape(id)}"]`);
    if (!link) return;
    link.classList.add("current");
    for (let box = link.closest("details"); box; box = box.parentElement.closest("details")) box.open = true;
  }

  function reason(entry) {
    if (entry.reason.endsWith("duplicate")) return `${entry.reason} of ${entry.duplicate_of} (similarity ${entry.similarity})`;
    if (entry.reason === "contamination") return `contaminated by benchmark ${entry.benchmark}: ${JSON.stringify(entry.matches)}`;
    if (entry.reason === "low-score") return `below the judge's minimums: ${JSON.stringify(entry.below)}`;
    return entry.reason;
  }

  // A record's question and answer as words, the answer's taken from its rendered HTML (stored once).
  const reader = new DOMParser();
  const searchable = (record) =>
    (record.text ??= (record.question + "\n" + reader.parseFromString(record.answer_html, "text/html").body.textContent).toLowerCase());

  function passes(record) {
    const value = (id) => $(id).value;
    const words = value("search").trim().toLowerCase();
    if (words && !searchable(record).includes(words)) return false;
    if (value("difficulty") && record.difficulty !== value("difficulty")) return false;
    if (value("strategy") && record.strategy !== value("strategy")) return false;
    const removed = Boolean(removal(record));
    if (value("status") === "kept" && removed) return false;
    if (value("status") === "removed" && !removed) return false;
    const score = record.judge?.overall;
    if (value("min-score") && !(score >= Number(value("min-score")))) return false;
    if (value("max-score") && !(score <= Number(value("max-score")))) return false;
    return true;
  }

  function questionLink(nodeId, record) {
    const removed = removal(record);
    return el("a", { class: "question" + (removed ? " removed" : ""), href: "#" + new URLSearchParams({ node: nodeId, subject: record.subject, record: record.id }), "data-record": record.id },
      el("span", { class: "tag", text: record.difficulty }), el("span", { class: "tag", text: record.strategy }), record.question);
  }

  const loadedRecords = () => Object.values(state.subjects).flatMap((part) => part.records.map((r) => [part.node, r]));

  function showDiscipline(node) {
    state.shown = node;
    const filtering = [...document.querySelectorAll("#filters input, #filters select")].some((f) => f.value);
    const parts = [el("h2", { text: node.path.join(" › ") }), el("p", { text: node.description })];
    if (filtering) {
      const found = loadedRecords().filter(([, r]) => passes(r)).map(([id, r]) => questionLink(id, r));
      parts.push(el("h3", { text: `${found.length} matching records in the opened subjects` }), ...found);
    } else {
      node.subjects.forEach((subject, n) => {
        const box = el("details", { class: "subject", "data-subject": n },
          el("summary", {}, `${subject.name} `, el("span", { class: "tag", text: subject.level }), el("span", { class: "counts", text: `${subject.records} records` })),
          el("p", { text: "Subtopics: " + subject.subtopics.join(", ") }));
        box.addEventListener("toggle", () => box.open && subjectOf(node.id, n).then((part) => fillSubject(box, subject, part)), { once: true });
        parts.push(box);
      });
    }
    $("discipline").replaceChildren(...parts);
  }

  function fillSubject(box, subject, part) {
    if (box.querySelector(".session")) return;
    box.append(...subject.sessions.map((session, i) => {
      const asked = part.records.filter((r) => r.sessions[0] === i + 1);
      return el("details", { class: "session", "data-session": i + 1 }, el("summary", { text: `Session ${i + 1}: ${session.title}` }),
        el("p", { text: session.description }), el("p", {}, el("b", { text: "Key concepts: " }), session.key_concepts.join(", ")),
        ...asked.map((r) => questionLink(part.node, r)));
    }));
  }

  function showPair(node, record) {
    const removed = removal(record);
    const parts = [el("h2", { text: "Question" }), el("p", { class: "asked", text: record.question }),
      el("p", {}, el("span", { class: "tag", text: record.difficulty }), el("span", { class: "tag", text: record.strategy }),
        `${node.subjects[record.subject].name} · sessions ${record.sessions.join(", ")} · concepts: ${record.concepts.join(", ")}`),
      el("h2", { text: "Answer" }), el("div", { class: "answer", html: record.answer_html })];
    if (record.judge) parts.push(el("h3", { text: "Judge" }), el("pre", { class: "judge", text: JSON.stringify(record.judge, null, 1) }));
    if (removed) parts.push(el("p", { class: "reason", text: "Removed: " + reason(removed) }));
    // the link as a path in the project, the same on every machine that has the build
    parts.push(el("p", { class: "hint" }, "Link: ", el("a", { href: location.hash }, el("code", { text: "results/browse/index.html" + location.hash }))));
    $("pair").replaceChildren(...parts);
  }

  async function route() {
    const wanted = new URLSearchParams(location.hash.slice(1));
    const id = wanted.get("node");
    if (!id || !state.index.nodes[id]) return;
    const node = await load(id);
    reveal(id);
    if (state.shown !== node) showDiscipline(node);
    if (!wanted.has("subject")) return;
    const part = await subjectOf(id, Number(wanted.get("subject")));
    const record = part.records.find((r) => r.id === wanted.get("record"));
    if (!record) return;
    showPair(node, record);
    const box = document.querySelector(`#discipline details.subject[data-subject="${record.subject}"]`);
    if (!box) return;  // a filtered list is shown
    box.open = true;
    fillSubject(box, node.subjects[record.subject], part);
    box.querySelector(`details.session[data-session="${record.sessions[0]}"]`).open = true;
    for (const link of document.querySelectorAll("#discipline a.question")) link.classList.toggle("current", link.dataset.record === record.id);
  }

  function index(data) {
    state.index = data;
    tree(data.nodes);
    addEventListener("hashchange", route);
    for (const event of ["input", "change"]) $("filters").addEventListener(event, () => state.shown && showDiscipline(state.shown));
    document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
    route();
  }

  function node(data) {
    state.waiting[`nodes/${data.id}/node.js`].resolve(data);
  }

  function removed(data) {
    Object.assign(state.removed, data.removed);
    state.waiting[`removed/${data.node}.js`].resolve(data);
  }

  function subject(data) {
    data.records.forEach((r) => { r.subject = data.subject; });
    state.subjects[`${data.node}/${data.subject}`] = data;
    state.waiting[`nodes/${data.node}/subject-${data.subject}.js`].resolve(data);
  }

  return { index, node, removed, subject };
})();
