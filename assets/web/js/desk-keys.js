// Keyboard shortcuts of the desk (issue 22, point 5): j / k move through the list,
// a opens the dispatch form of the ticket on, x picks it for bulk dispatch, Enter
// opens it, / goes to the search box, ? shows the list of shortcuts, Esc closes it.
// Keys typed into a field are the field's.

// `opts`: move(step), assign(), search(), pick(), open(), help (the help element).
export function installKeys(opts) {
  const help = opts.help;
  const close = help.querySelector('[data-close]');
  if (close) close.addEventListener('click', () => { help.hidden = true; });
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = (e.target && e.target.tagName) || '';
    if (['INPUT', 'TEXTAREA', 'SELECT'].includes(tag) || (e.target && e.target.isContentEditable)) {
      if (e.key === 'Escape' && tag !== 'SELECT') e.target.blur();
      return;
    }
    let done = true;
    switch (e.key) {
      case 'j': opts.move(1); break;
      case 'k': opts.move(-1); break;
      case 'a': opts.assign(); break;
      case 'x': opts.pick(); break;
      case 'Enter': done = opts.open(); break;
      case '/': opts.search(); break;
      case '?': help.hidden = !help.hidden; break;
      case 'Escape': help.hidden = true; break;
      default: done = false;
    }
    if (done) e.preventDefault();
  });
}
