// Progressive enhancement only: every action works without this file.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.hasAttribute("data-select-all")) return;
  for (const pick of box.form.querySelectorAll('input[name="ids"]')) pick.checked = box.checked;
});
