// The barge console: one page, views chosen by the URL's fragment. Every
// call goes to POST /console/api/<service>/<Operation> with the session
// cookie and the CSRF token barged gave at sign-in, and so runs with the
// signed-in key's permissions. Elements are built with the DOM (never from
// HTML strings), so nothing a resource is named can run as script.
"use strict";

const state = { csrf: null, region: null, timer: null, follow: null, viewSeq: 0 };

// --- small helpers -------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "className") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.appendChild(c instanceof Node ? c : document.createTextNode(c));
  return el;
}

function $(id) { return document.getElementById(id); }
function short(arn) { return arn ? String(arn).split("/").pop() : ""; }
// A target group's name from its ARN (".../targetgroup/<name>/<id>").
function tgName(arn) { return arn ? String(arn).split("/").slice(-2)[0] : ""; }
function tdName(arn) { return arn ? String(arn).split("/").pop() : ""; }
function when(t) {
  if (t === undefined || t === null) return "";
  const d = new Date(typeof t === "number" ? t * 1000 : t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
function statusClass(v) {
  if (/^(ACTIVE|RUNNING|COMPLETED|healthy|PRIMARY|HEALTHY)$/.test(v)) return "ok";
  if (/^(FAILED|STOPPED|unhealthy|UNHEALTHY|INACTIVE)$/.test(v)) return "bad";
  return "warn";
}
function badge(v) { return h("span", { className: statusClass(v || "") }, v || "—"); }
function table(cols, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c) =>
      c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))))
      : h("tr", {}, h("td", { colspan: cols.length, className: "muted" }, "none"))));
}
function num(v) { return h("td", { className: "num" }, v === undefined ? "" : v); }
function bar(part, whole, pending) {
  const pct = whole > 0 ? Math.min(100, Math.round((100 * part) / whole)) : 0;
  const inner = h("span", pending ? { className: "pending" } : {});
  inner.style.width = pct + "%";
  return h("span", { className: "bar", title: `${part} of ${whole}` }, inner);
}

function showError(e) {
  const box = $("error");
  box.textContent = e ? (e.type ? `${e.type}: ${e.message}` : String(e.message || e)) : "";
  box.hidden = !e;
}

class ApiError extends Error {
  constructor(type, message, status) { super(message); this.type = type; this.status = status; }
}

async function post(path, body, headers) {
  const r = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: Object.assign({ "Content-Type": "application/json" }, headers || {}),
    body: JSON.stringify(body || {}),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(data.__type || `HTTP ${r.status}`, data.message || "", r.status);
  return data;
}

// One AWS operation as the signed-in key, in the picked region.
async function call(service, op, input) {
  try {
    return await post(`/console/api/${service}/${op}`, input,
      { "X-CSRF-Token": state.csrf, "X-Barge-Region": state.region });
  } catch (e) {
    if (e.status === 401) signedOut();
    throw e;
  }
}

// Every page of a List operation.
async function all(service, op, input, field) {
  let out = [], token;
  do {
    const r = await call(service, op, Object.assign({}, input, token ? { nextToken: token } : {}));
    out = out.concat(r[field] || []);
    token = r.nextToken;
  } while (token);
  return out;
}

// Runs fn, showing its error in the banner; actions keep the page as it is.
async function guarded(fn) {
  try {
    showError(null);
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  }
}

// --- sign-in -------------------------------------------------------------

// The region picker offers the regions that hold something and takes any
// typed region name; the choice lasts for the browser tab until sign-out.
const REGION_RE = /^[a-z]{2}-([a-z]+-)+\d+$/;

function pickRegion(region) {
  state.region = region;
  sessionStorage.setItem("barge-region", region);
  $("region").value = region;
}

function regionPicker(info) {
  const list = new Set(info.regions || []);
  list.add(info.region);
  const saved = sessionStorage.getItem("barge-region");
  if (saved) list.add(saved);
  $("regions").replaceChildren(...[...list].sort().map((r) => h("option", { value: r })));
  pickRegion(saved && REGION_RE.test(saved) ? saved : info.region);
  $("region-picker").hidden = false;
}

function regionChanged() {
  const r = $("region").value.trim();
  if (!r) return; // being retyped
  if (!REGION_RE.test(r)) {
    showError({ type: "ValidationException", message: `'${r}' is not a region name` });
    $("region").value = state.region;
    return;
  }
  if (r === state.region) return;
  pickRegion(r);
  // the resources of the page were the old region's: start from its clusters
  if (location.hash === "#/clusters") route();
  else location.hash = "#/clusters";
}

function signedIn(info) {
  state.csrf = info.csrfToken;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = info.arn;
  regionPicker(info);
  route();
}

function signedOut() {
  state.csrf = null;
  stopTimers();
  $("view").replaceChildren();
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("region-picker").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").hidden = true;
  try {
    const info = await post("/console/login",
      { accessKeyId: $("akid").value.trim(), secretAccessKey: $("secret").value });
    $("secret").value = "";
    signedIn(info);
  } catch (e) {
    $("login-error").textContent = `${e.type}: ${e.message}`;
    $("login-error").hidden = false;
  }
}

async function logout() {
  await post("/console/logout", {}, { "X-CSRF-Token": state.csrf }).catch(() => {});
  sessionStorage.removeItem("barge-region");
  location.hash = "";
  signedOut();
}

// --- views ---------------------------------------------------------------

function stopTimers() {
  clearInterval(state.timer);
  clearTimeout(state.follow);
  state.timer = state.follow = null;
}

// Shows a view: draw(body) fills the live part and runs again every few
// seconds; controls built once go above it.
function view(title, controls, draw) {
  stopTimers();
  const seq = ++state.viewSeq;
  const body = h("div", { id: "live" });
  $("view").replaceChildren(h("h1", {}, title), controls || "", body);
  const refresh = async () => {
    try {
      const parts = await draw();
      if (seq !== state.viewSeq) return;
      body.replaceChildren(...[].concat(parts));
      body.dataset.loaded = "1";
    } catch (e) {
      if (seq === state.viewSeq) showError(e);
    }
  };
  refresh();
  state.timer = setInterval(refresh, 3000);
  return refresh;
}

async function clusterNames() {
  return (await all("ecs", "ListClusters", {}, "clusterArns")).map(short);
}

async function viewClusters() {
  view("Clusters", null, async () => {
    const names = await clusterNames();
    if (!names.length) return h("p", { className: "muted" }, "No clusters.");
    const { clusters } = await call("ecs", "DescribeClusters",
      { clusters: names, include: ["STATISTICS"] });
    const out = [];
    for (const c of clusters) {
      const arns = await all("ecs", "ListContainerInstances", { cluster: c.clusterName },
        "containerInstanceArns");
      const ci = [];
      for (let i = 0; i < arns.length; i += 100)
        ci.push(...(await call("ecs", "DescribeContainerInstances",
          { cluster: c.clusterName, containerInstances: arns.slice(i, i + 100) }))
          .containerInstances);
      const res = (list, name) => ((list || []).find((r) => r.name === name) || {}).integerValue || 0;
      out.push(h("div", { className: "card cluster", "data-cluster": c.clusterName },
        h("h2", {}, c.clusterName, " ", badge(c.status)),
        h("p", {}, `${c.activeServicesCount} services · ${c.runningTasksCount} running, ` +
          `${c.pendingTasksCount} pending tasks · ${c.registeredContainerInstancesCount} ` +
          "container instances · ",
          h("a", { href: `#/services/${c.clusterName}` }, "services"), " · ",
          h("a", { href: `#/tasks/${c.clusterName}` }, "tasks")),
        table(["Container instance", "Status", "Agent", "CPU used / registered",
          "Memory used / registered (MiB)", "Running tasks"],
          ci.map((i) => {
            const cpu = res(i.registeredResources, "CPU"), cpuFree = res(i.remainingResources, "CPU");
            const mem = res(i.registeredResources, "MEMORY");
            const memFree = res(i.remainingResources, "MEMORY");
            return [short(i.containerInstanceArn), badge(i.status),
              i.agentConnected ? h("span", { className: "ok" }, "connected")
                : h("span", { className: "bad" }, "disconnected"),
              h("td", {}, bar(cpu - cpuFree, cpu), `${cpu - cpuFree} / ${cpu}`),
              h("td", {}, bar(mem - memFree, mem), `${mem - memFree} / ${mem}`),
              num(i.runningTasksCount)];
          }), { className: "instances" }),
        await charts([{ Name: "ClusterName", Value: c.clusterName }])));
    }
    return out;
  });
}

// CPU and memory utilisation of the last 15 minutes as two inline SVG charts, from
// the metrics barged keeps (CloudWatch AWS/ECS, per cluster or service).
async function charts(dims) {
  const end = Math.floor(Date.now() / 1000), start = end - 900;
  const one = async (metric, title) => {
    try {
      const r = await call("cloudwatch", "GetMetricStatistics", {
        Namespace: "AWS/ECS", MetricName: metric, Dimensions: dims, StartTime: start,
        EndTime: end, Period: 10, Statistics: ["Average"],
      });
      return chart(title, (r.Datapoints || []).map((p) => [p.Timestamp, p.Average]), start, end);
    } catch (e) {
      return h("div", { className: "chart muted" }, `${title}: ${e.type}: ${e.message}`);
    }
  };
  return h("div", { className: "charts" }, ...await Promise.all([
    one("CPUUtilization", "CPU utilization (%)"),
    one("MemoryUtilization", "Memory utilization (%)")]));
}

// points: [time (epoch seconds or ISO text), value] pairs.
function chart(title, points, start, end) {
  const W = 360, H = 140, L = 30, B = 18, T = 16;
  const pts = points.map(([t, v]) => [typeof t === "number" ? t : Date.parse(t) / 1000, v])
    .sort((a, b) => a[0] - b[0]);
  const top = Math.max(100, ...pts.map((p) => p[1]));
  const x = (t) => L + ((t - start) / (end - start)) * (W - L - 4);
  const y = (v) => H - B - (v / top) * (H - B - T);
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": title, class: "metric" });
  svg.appendChild(s("text", { x: L, y: 11 }, title));
  for (const v of [0, top / 2, top]) {
    svg.appendChild(s("line", { x1: L, x2: W - 4, y1: y(v), y2: y(v), stroke: "#e3e7ee" }));
    svg.appendChild(s("text", { x: 2, y: y(v) + 3 }, String(Math.round(v))));
  }
  svg.appendChild(s("text", { x: L, y: H - 4 }, "-15 min"));
  svg.appendChild(s("text", { x: W - 30, y: H - 4 }, "now"));
  if (pts.length) {
    const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    svg.appendChild(s("path", { d: d.join(" "), fill: "none", stroke: "#2d6fb0",
      "stroke-width": 1.5 }));
    for (const p of pts) svg.appendChild(s("circle", { cx: x(p[0]), cy: y(p[1]), r: 1.8,
      fill: "#2d6fb0" }));
  } else {
    svg.appendChild(s("text", { x: W / 2 - 30, y: H / 2 }, "no data yet"));
  }
  return h("div", { className: "chart" }, svg);
}

function clusterPicker(current, target) {
  const sel = h("select", { id: "cluster-select",
    onchange: () => { location.hash = `#/${target}/${sel.value}`; } });
  clusterNames().then((names) => {
    for (const n of names) sel.appendChild(h("option", { value: n, selected: n === current }, n));
  }).catch(showError);
  return h("div", { className: "actions" }, h("label", {}, "Cluster ", sel));
}

async function firstCluster() {
  const names = await clusterNames();
  return names.includes("default") ? "default" : names[0] || "default";
}

async function viewServices(cluster) {
  cluster = cluster || await firstCluster();
  view(`Services in ${cluster}`, clusterPicker(cluster, "services"), async () => {
    const arns = await all("ecs", "ListServices", { cluster }, "serviceArns");
    const svcs = [];
    for (let i = 0; i < arns.length; i += 10)
      svcs.push(...(await call("ecs", "DescribeServices",
        { cluster, services: arns.slice(i, i + 10) })).services);
    return table(["Service", "Status", "Desired", "Running", "Pending", "Task definition",
      "Rollout"], svcs.map((v) => [
      h("a", { href: `#/service/${cluster}/${v.serviceName}` }, v.serviceName),
      badge(v.status), num(v.desiredCount), num(v.runningCount), num(v.pendingCount),
      tdName(v.taskDefinition), badge((v.deployments || [])[0]?.rolloutState)]),
    { id: "services" });
  });
}

async function previousRevision(current) {
  const family = tdName(current).split(":")[0];
  const arns = await all("ecs", "ListTaskDefinitions",
    { familyPrefix: family, sort: "DESC", status: "ACTIVE" }, "taskDefinitionArns");
  const mine = arns.filter((a) => tdName(a).split(":")[0] === family);
  const i = mine.indexOf(current);
  if (i < 0 || i + 1 >= mine.length)
    throw new ApiError("RollbackError",
      `no ACTIVE revision of '${family}' before '${tdName(current)}'`);
  return mine[i + 1];
}

async function viewService(cluster, name) {
  let current = null;
  const countInput = h("input", { id: "desired-count", type: "number", min: 0, size: 5 });
  const act = (label, id, cls, fn) => h("button", { id, className: cls, type: "button",
    onclick: () => guarded(async () => { await fn(); refresh(); }) }, label);
  const controls = h("div", { className: "actions" },
    h("label", {}, "Desired count ", countInput),
    act("Scale", "scale", "", () => call("ecs", "UpdateService",
      { cluster, service: name, desiredCount: Number(countInput.value) })),
    act("Force new deployment", "force-deploy", "secondary", () => call("ecs", "UpdateService",
      { cluster, service: name, forceNewDeployment: true })),
    act("Roll back", "rollback", "secondary", async () => {
      const target = await previousRevision(current.taskDefinition);
      await call("ecs", "UpdateService", { cluster, service: name, taskDefinition: target });
    }));
  const refresh = view(`Service ${name}`, controls, async () => {
    const r = await call("ecs", "DescribeServices", { cluster, services: [name] });
    const v = (r.services || [])[0];
    if (!v) throw new ApiError("ServiceNotFoundException", `no service '${name}' in '${cluster}'`);
    if (!current) countInput.value = v.desiredCount;
    current = v;
    const parts = [
      h("p", { id: "service-summary" }, badge(v.status),
        ` desired ${v.desiredCount} · running ${v.runningCount} · pending ${v.pendingCount} · `,
        tdName(v.taskDefinition), " · ", h("a", { href: `#/tasks/${cluster}/${name}` }, "tasks")),
      h("h2", {}, "Deployments"),
      table(["Deployment", "Status", "Task definition", "Running / desired", "Pending",
        "Rollout", "Updated"], (v.deployments || []).map((d) => [
        short(d.id), badge(d.status), tdName(d.taskDefinition),
        h("td", {}, bar(d.runningCount, d.desiredCount), `${d.runningCount} / ${d.desiredCount}`),
        num(d.pendingCount),
        h("span", { title: d.rolloutStateReason || "" }, badge(d.rolloutState)), when(d.updatedAt)]),
      { id: "deployments" }),
    ];
    if ((v.loadBalancers || []).length) {
      parts.push(h("h2", {}, "Target health"));
      for (const lb of v.loadBalancers.filter((l) => l.targetGroupArn)) {
        const th = await call("elbv2", "DescribeTargetHealth", { TargetGroupArn: lb.targetGroupArn });
        parts.push(table(["Target group", "Target", "Port", "State", "Reason"],
          (th.TargetHealthDescriptions || []).map((t) => [tgName(lb.targetGroupArn),
            t.Target.Id, num(t.Target.Port), badge(t.TargetHealth.State),
            t.TargetHealth.Description || t.TargetHealth.Reason || ""]), { className: "targets" }));
      }
    }
    parts.push(h("h2", {}, "Utilization"),
      await charts([{ Name: "ClusterName", Value: cluster }, { Name: "ServiceName", Value: name }]));
    parts.push(h("h2", {}, "Events"),
      table(["Time", "Message"], (v.events || []).slice(0, 25).map((e) =>
        [when(e.createdAt), e.message]), { id: "events" }));
    return parts;
  });
}

async function viewTasks(cluster, service) {
  cluster = cluster || await firstCluster();
  view(service ? `Tasks of ${service}` : `Tasks in ${cluster}`, clusterPicker(cluster, "tasks"),
    async () => {
      const filt = service ? { serviceName: service } : {};
      const arns = [
        ...await all("ecs", "ListTasks", { cluster, ...filt }, "taskArns"),
        ...await all("ecs", "ListTasks", { cluster, desiredStatus: "STOPPED", ...filt }, "taskArns"),
      ];
      const tasks = [];
      for (let i = 0; i < arns.length; i += 100)
        tasks.push(...(await call("ecs", "DescribeTasks",
          { cluster, tasks: arns.slice(i, i + 100) })).tasks);
      return table(["Task", "Task definition", "Group", "Last status", "Desired", "Started",
        "Stopped reason"], tasks.map((t) => [
        h("a", { href: `#/task/${cluster}/${short(t.taskArn)}` }, short(t.taskArn)),
        tdName(t.taskDefinitionArn), t.group || "", badge(t.lastStatus), t.desiredStatus,
        when(t.startedAt), t.stoppedReason || ""]), { id: "tasks" });
    });
}

async function viewTask(cluster, id) {
  const stop = h("button", { id: "stop-task", className: "danger", type: "button",
    onclick: () => guarded(() => call("ecs", "StopTask",
      { cluster, task: id, reason: "Stopped from the barge console" })) }, "Stop task");
  view(`Task ${id}`, h("div", { className: "actions" }, stop), async () => {
    const t = (await call("ecs", "DescribeTasks", { cluster, tasks: [id] })).tasks[0];
    if (!t) throw new ApiError("InvalidParameterException", `no task '${id}' in '${cluster}'`);
    const td = (await call("ecs", "DescribeTaskDefinition",
      { taskDefinition: t.taskDefinitionArn })).taskDefinition;
    const logLink = (c) => {
      const def = (td.containerDefinitions || []).find((d) => d.name === c.name) || {};
      const lc = def.logConfiguration || {};
      const o = lc.options || {};
      if (lc.logDriver !== "awslogs" || !o["awslogs-group"]) return "";
      const stream = o["awslogs-stream-prefix"] ? `${o["awslogs-stream-prefix"]}/${c.name}/${id}` : "";
      // the logs are in the region awslogs-region names
      const region = o["awslogs-region"];
      return h("a", { href: `#/logs/${encodeURIComponent(o["awslogs-group"])}/` +
        encodeURIComponent(stream),
      onclick: () => { if (REGION_RE.test(region || "")) pickRegion(region); } }, "logs");
    };
    return [
      h("p", {}, badge(t.lastStatus), ` desired ${t.desiredStatus} · ${tdName(t.taskDefinitionArn)}` +
        ` · ${t.launchType || ""} · cpu ${t.cpu || "—"} · memory ${t.memory || "—"}`),
      t.stoppedReason ? h("p", { id: "stopped-reason" }, `Stopped: ${t.stopCode || ""} ` +
        t.stoppedReason) : "",
      h("h2", {}, "Containers"),
      table(["Container", "Image", "Status", "Exit code", "Reason", "Health", "Logs"],
        (t.containers || []).map((c) => [c.name, c.image, badge(c.lastStatus),
          num(c.exitCode), c.reason || "", c.healthStatus || "", logLink(c)]), { id: "containers" }),
      h("p", { className: "muted" }, `Created ${when(t.createdAt)} · started ${when(t.startedAt)}` +
        ` · stopped ${when(t.stoppedAt)}`),
    ];
  });
}

// Lines of a line-by-line diff of a and b (longest common subsequence).
function diffLines(a, b) {
  const n = a.length, m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([a[i], b[j], ""]); i++; j++; }
    else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) { out.push(["", b[j], "add"]); j++; }
    else { out.push([a[i], "", "del"]); i++; }
  }
  return out;
}

// Rows [left, right, left class, right class]: each run of removed and added
// lines is shown side by side, removed on the left, added on the right.
function sideBySide(rows) {
  const out = [];
  for (let i = 0; i < rows.length;) {
    if (!rows[i][2]) { out.push([rows[i][0], rows[i][1], "", ""]); i++; continue; }
    const del = [], add = [];
    for (; i < rows.length && rows[i][2]; i++)
      (rows[i][2] === "del" ? del : add).push(rows[i][rows[i][2] === "del" ? 0 : 1]);
    for (let k = 0; k < Math.max(del.length, add.length); k++)
      out.push([del[k] ?? "", add[k] ?? "", k < del.length ? "del" : "gap",
        k < add.length ? "add" : "gap"]);
  }
  return out;
}

// A task definition as JSON without what differs on every revision anyway.
function tdText(td) {
  const c = Object.assign({}, td);
  for (const k of ["taskDefinitionArn", "revision", "registeredAt", "registeredBy"]) delete c[k];
  return JSON.stringify(c, null, 2).split("\n");
}

async function viewTaskDefs(family, left, right) {
  stopTimers();
  const families = await all("ecs", "ListTaskDefinitionFamilies", { status: "ACTIVE" }, "families");
  family = family || families[0];
  const famSel = h("select", { id: "family",
    onchange: () => { location.hash = `#/taskdefs/${famSel.value}`; } },
  families.map((f) => h("option", { value: f, selected: f === family }, f)));
  const revs = family ? (await all("ecs", "ListTaskDefinitions",
    { familyPrefix: family, sort: "DESC" }, "taskDefinitionArns"))
    .filter((a) => tdName(a).split(":")[0] === family).map((a) => tdName(a)) : [];
  right = right || revs[0];
  left = left || revs[1] || revs[0];
  const pick = (id, cur) => h("select", { id }, revs.map((r) => h("option", { value: r,
    selected: r === cur }, r)));
  const ls = pick("left-rev", left), rs = pick("right-rev", right);
  const go = () => { location.hash = `#/taskdefs/${family}/${ls.value}/${rs.value}`; };
  ls.addEventListener("change", go);
  rs.addEventListener("change", go);
  const body = h("div", { id: "td-diff" });
  $("view").replaceChildren(h("h1", {}, "Task definitions"),
    h("div", { className: "actions" }, h("label", {}, "Family ", famSel),
      h("label", {}, "Compare ", ls), h("label", {}, "with ", rs)), body);
  if (!left) return;
  const [a, b] = await Promise.all([left, right].map((r) =>
    call("ecs", "DescribeTaskDefinition", { taskDefinition: r }).then((x) => x.taskDefinition)));
  const rows = sideBySide(diffLines(tdText(a), tdText(b)));
  const changed = rows.filter((r) => r[2] || r[3]).length;
  const summary = changed ? `${changed} changed line${changed === 1 ? "" : "s"}` : "identical";
  body.replaceChildren(h("p", {}, summary),
    h("div", { className: "diff" }, h("div", {}, h("b", {}, left)), h("div", {}, h("b", {}, right)),
      rows.flatMap(([x, y, lk, rk]) => [h("div", { className: lk }, x),
        h("div", { className: rk }, y)])));
}

async function viewLogs(group, stream) {
  stopTimers();
  const groups = await all("logs", "DescribeLogGroups", {}, "logGroups");
  group = group || (groups[0] && groups[0].logGroupName);
  const gSel = h("select", { id: "log-group",
    onchange: () => { location.hash = `#/logs/${encodeURIComponent(gSel.value)}`; } },
  groups.map((g) => h("option", { value: g.logGroupName, selected: g.logGroupName === group },
    g.logGroupName)));
  const streams = group ? (await call("logs", "DescribeLogStreams",
    { logGroupName: group, orderBy: "LastEventTime", descending: true, limit: 50 })).logStreams : [];
  stream = stream || (streams[0] && streams[0].logStreamName);
  const sSel = h("select", { id: "log-stream",
    onchange: () => { location.hash = `#/logs/${encodeURIComponent(group)}/` +
      encodeURIComponent(sSel.value); } },
  streams.map((x) => h("option", { value: x.logStreamName, selected: x.logStreamName === stream },
    x.logStreamName)));
  const follow = h("input", { type: "checkbox", id: "follow", checked: true });
  const out = h("pre", { className: "log", id: "log-lines" });
  const pattern = h("input", { id: "log-pattern", size: 30, placeholder: "filter pattern" });
  const found = h("div", { id: "log-search" });
  const search = h("form", { className: "actions",
    onsubmit: (ev) => { ev.preventDefault(); guarded(() => searchLogs(group, pattern.value, found)); } },
  h("label", {}, "Search all streams ", pattern),
  h("button", { id: "log-search-btn", type: "submit", disabled: !group }, "Search"));
  $("view").replaceChildren(h("h1", {}, "Logs"),
    h("div", { className: "actions" }, h("label", {}, "Group ", gSel),
      h("label", {}, "Stream ", sSel), h("label", {}, follow, " follow")), out, search, found);
  if (!group || !stream) {
    out.textContent = "No log streams.";
    return;
  }
  // Follows the stream: each GetLogEvents continues from the last forward
  // token, so every event is shown once.
  const seq = state.viewSeq;
  let token;
  const poll = async () => {
    if (seq !== state.viewSeq) return;
    try {
      const r = await call("logs", "GetLogEvents", Object.assign(
        { logGroupName: group, logStreamName: stream, startFromHead: true },
        token ? { nextToken: token } : {}));
      if (seq !== state.viewSeq) return;
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      for (const e of r.events || [])
        out.appendChild(document.createTextNode(`${when(e.timestamp / 1000)}  ${e.message}\n`));
      if (atEnd) out.scrollTop = out.scrollHeight;
      const more = r.nextForwardToken && r.nextForwardToken !== token && (r.events || []).length;
      token = r.nextForwardToken || token;
      if (more) return poll();
    } catch (e) {
      showError(e);
    }
    if (follow.checked && seq === state.viewSeq) state.follow = setTimeout(poll, 1500);
  };
  follow.addEventListener("change", () => { if (follow.checked) poll(); });
  poll();
}

// The events of every stream of group that match a CloudWatch Logs filter
// pattern (FilterLogEvents, its pages up to SEARCH_MAX events), oldest first.
const SEARCH_MAX = 500;
async function searchLogs(group, pattern, into) {
  const seq = state.viewSeq;
  into.replaceChildren(h("p", { className: "muted" }, "Searching…"));
  let events = [], token;
  do {
    const r = await call("logs", "FilterLogEvents", Object.assign(
      { logGroupName: group, filterPattern: pattern, limit: SEARCH_MAX - events.length },
      token ? { nextToken: token } : {}));
    events = events.concat(r.events || []);
    token = r.nextToken;
  } while (token && events.length < SEARCH_MAX && seq === state.viewSeq);
  if (seq !== state.viewSeq) return;
  const more = token ? ` (the first ${SEARCH_MAX})` : "";
  into.replaceChildren(
    h("p", { id: "log-search-summary" }, `${events.length} matching event` +
      `${events.length === 1 ? "" : "s"}${more} for '${pattern}' in ${group}`),
    table(["Time", "Stream", "Message"], events.map((e) => [when(e.timestamp / 1000),
      h("a", { href: `#/logs/${encodeURIComponent(group)}/${encodeURIComponent(e.logStreamName)}` },
        e.logStreamName), h("td", { className: "logmsg" }, e.message)]),
    { id: "log-search-results" }));
}

// --- routing -------------------------------------------------------------

async function route() {
  if (!state.csrf) return;
  showError(null);
  state.viewSeq++;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [name, ...args] = parts;
  for (const a of document.querySelectorAll("#nav a"))
    a.classList.toggle("active", a.getAttribute("href") === `#/${name === "service" ? "services"
      : name === "task" ? "tasks" : name || "clusters"}`);
  const views = { clusters: viewClusters, services: viewServices, service: viewService,
    tasks: viewTasks, task: viewTask, taskdefs: viewTaskDefs, logs: viewLogs };
  await guarded(() => (views[name] || viewClusters)(...args));
}

async function start() {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("region").addEventListener("change", regionChanged);
  window.addEventListener("hashchange", route);
  try {
    const r = await fetch("/console/session", { credentials: "same-origin" });
    if (r.ok) return signedIn(await r.json());
  } catch (e) {
    // not signed in: the form below
  }
  signedOut();
}

document.addEventListener("DOMContentLoaded", start);
