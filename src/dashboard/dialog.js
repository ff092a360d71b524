// The one operator-action dialog (a <dialog>, not window.prompt, so it is
// styled, accessible and drivable by tests). Every action asks for a reason;
// the action runs while the dialog is open so an API error is shown in it,
// with its code, and the operator can correct and retry.

/**
 * @param {{
 *   title: string, subject: string,
 *   areas?: string[], area?: string,      // shows an area picker
 *   on?: boolean,                          // shows the exempt checkbox, preset
 *   impact?: string,                       // "affects 510 people", shown large
 *   refreshImpact?(): Promise<string>,     // a fresher count, fetched while the dialog is open
 *   confirmName?: string,                  // must be typed to enable Confirm (site-wide resets, lockdowns)
 *   confirmWhy?: string,                   // why it must be typed (default: a site-wide reset)
 *   run(values: { reason: string, area?: string, on?: boolean }): Promise<void>,
 * }} opts
 * @returns {Promise<boolean>} true when the action ran, false when cancelled
 */
export function runActionDialog(opts) {
  const dlg = document.querySelector('[data-testid="action-dialog"]');
  const $ = (id) => dlg.querySelector(`[data-testid="${id}"]`);
  const form = $('action-form');
  const reason = $('action-reason');
  const err = $('action-error');
  const areaField = $('action-area-field');
  const areaSel = $('action-area');
  const onField = $('action-on-field');
  const onBox = $('action-on');
  const confirm = $('action-confirm');
  const cancel = $('action-cancel');
  const impact = $('action-impact');
  const typedField = $('action-typed-field');
  const typed = $('action-typed');
  const typedName = $('action-typed-name');
  const typedWhy = $('action-typed-why');
  const why = opts.confirmWhy || 'This reset is site-wide.';

  $('action-title').textContent = opts.title;
  $('action-subject').textContent = opts.subject;
  reason.value = '';
  err.hidden = true;
  err.textContent = '';
  areaField.hidden = !opts.areas;
  if (opts.areas) {
    areaSel.replaceChildren(...opts.areas.map((a) => new Option(a, a)));
    if (opts.area && opts.areas.includes(opts.area)) areaSel.value = opts.area;
  }
  onField.hidden = opts.on === undefined;
  if (opts.on !== undefined) onBox.checked = opts.on;
  impact.textContent = opts.impact || '';
  impact.hidden = !opts.impact;
  const mustType = typeof opts.confirmName === 'string' && opts.confirmName !== '';
  typedField.hidden = !mustType;
  typed.value = '';
  typedName.textContent = mustType ? opts.confirmName : '';
  typedWhy.textContent = why;
  const typedOk = () => !mustType || typed.value.trim() === opts.confirmName;
  const syncConfirm = () => { confirm.disabled = !typedOk(); };
  syncConfirm();
  let open = true;
  if (opts.refreshImpact) {
    opts.refreshImpact().then((text) => { if (open && text) impact.textContent = text; }, () => { /* keep the first count */ });
  }

  return new Promise((resolve) => {
    const done = (ran) => {
      open = false;
      typed.removeEventListener('input', syncConfirm);
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dlg.removeEventListener('cancel', onCancel);
      if (dlg.open) dlg.close();
      resolve(ran);
    };
    const onCancel = (e) => { e.preventDefault(); done(false); };
    const onSubmit = async (e) => {
      e.preventDefault();
      if (!typedOk()) {
        err.textContent = `type ${opts.confirmName} to confirm: ${why.replace(/\.$/, '').replace(/^./, (c) => c.toLowerCase())}`;
        err.hidden = false;
        typed.focus();
        return;
      }
      const why = reason.value.trim();
      if (!why) {
        err.textContent = 'a reason is required: it is recorded with the action';
        err.hidden = false;
        reason.focus();
        return;
      }
      const values = { reason: why };
      if (opts.areas) values.area = areaSel.value;
      if (opts.on !== undefined) values.on = onBox.checked;
      confirm.disabled = true;
      err.hidden = true;
      try {
        await opts.run(values);
        done(true);
      } catch (x) {
        err.textContent = x && x.code ? `${x.code}: ${x.message}` : String(x);
        err.hidden = false;
        syncConfirm();
      }
    };
    typed.addEventListener('input', syncConfirm);
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    (mustType ? typed : reason).focus();
  });
}
