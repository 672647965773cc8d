// batchnb HelpPanel: a collapsible "?" panel. The kernel writes the (escaped) text; this module
// only shows it and remembers whether it is unfolded. No build step, no network.

function render({ model, el }) {
  const details = document.createElement("details");
  details.className = "batchnb-help";
  details.dataset.testid = "help";
  const summary = document.createElement("summary");
  const mark = document.createElement("span");
  mark.className = "batchnb-help-mark";
  mark.textContent = "?";
  const title = document.createElement("span");
  title.className = "batchnb-help-title";
  summary.append(mark, title);
  const body = document.createElement("div");
  body.className = "batchnb-help-body";
  details.append(summary, body);
  el.append(details);

  function draw() {
    title.textContent = model.get("title");
    body.innerHTML = model.get("body");
    details.open = model.get("expanded");
  }
  function onToggle() {
    if (details.open !== model.get("expanded")) {
      model.set("expanded", details.open);
      model.save_changes();
    }
  }
  details.addEventListener("toggle", onToggle);
  model.on("change:title", draw);
  model.on("change:body", draw);
  model.on("change:expanded", draw);
  draw();
  return () => {
    details.removeEventListener("toggle", onToggle);
    model.off("change:title", draw);
    model.off("change:body", draw);
    model.off("change:expanded", draw);
  };
}

export default { render };
