/* comments widget: renders a thread and its Leave-a-Reply form into #comments.
 * Plain ES2020, no dependencies, CSP-friendly (no eval, no inline handlers or style attributes).
 * Server HTML (already sanitized at write time) is the only thing ever assigned to innerHTML;
 * every user string (names, urls, dates, messages) goes through textContent. */
(() => {
  'use strict';

  // Every user-visible string. Add a locale by adding a key; missing entries fall back to en.
  const STRINGS = {
    en: {
      count: { zero: 'No Responses yet', one: '1 Response', other: '{n} Responses' },
      leaveReply: 'Leave a Reply',
      replyTo: 'Reply to {name}',
      reply: 'Reply',
      cancelReply: 'Cancel reply',
      emailNote: 'Your email address will not be published.',
      requiredNote: 'Required fields are marked',
      comment: 'Comment',
      name: 'Name',
      email: 'Email',
      url: 'Website',
      consent: 'Save my name, email, and website in this browser for the next time I comment.',
      honeypot: 'Leave this field empty',
      submit: 'Post Comment',
      closed: 'Comments are closed.',
      pending: 'Your comment is awaiting moderation.',
      posted: 'Your comment has been posted.',
      anonymous: 'Anonymous',
      more: 'Load more comments',
      loading: 'Loading comments…',
      loadError: 'Comments could not be loaded.',
      retry: 'Try again',
      network: 'Could not reach the comment server. Please check your connection and try again.',
      failed: 'Your comment could not be posted. Please try again.',
      contentRequired: 'Please type your comment text.',
      nameRequired: 'Please fill the required field: name.',
      emailRequired: 'Please fill the required field: email.',
      emailInvalid: 'Please enter a valid email address.',
      urlInvalid: 'Please enter a valid website address (http or https).',
      contentLong: 'Your comment is too long (the limit is 65,525 bytes).',
      nameLong: 'Your name is too long (the limit is 245 characters).',
      emailLong: 'Your email address is too long (the limit is 100 characters).',
      urlLong: 'Your website address is too long (the limit is 200 characters).',
    },
  };

  const TOKEN_KEY = 'comments:token';
  const AUTHOR_KEY = 'comments:author';
  const FIELDS = ['content', 'name', 'email', 'url']; // form order; also the API field names

  const script = document.currentScript || [...document.querySelectorAll('script[src*="widget.js"]')].pop();
  if (!script) return;
  const ORIGIN = new URL(script.src, location.href).origin;
  const API = ORIGIN + '/api/comments';

  // localStorage throws in some private modes and sandboxed frames; the widget works without it.
  const store = {
    get(k) { try { return localStorage.getItem(k); } catch { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch { /* storage unavailable */ } },
    del(k) { try { localStorage.removeItem(k); } catch { /* storage unavailable */ } },
  };

  // This page's address without its #hash and without the no-JS thread's own query parameters.
  function articleUrl() {
    const u = new URL(location.href);
    for (const k of ['cpage', 'replytocom', 'unapproved', 'moderation-hash']) u.searchParams.delete(k);
    u.hash = '';
    return u.href;
  }

  // createElement helper: attrs 'text' sets textContent, 'onX' adds a listener; children are nodes or strings.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids) if (c != null && c !== false) el.append(c);
    return el;
  }

  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (_, k) => vars[k]);
  const bytes = (s) => new TextEncoder().encode(s).length;
  const chars = (s) => [...s].length; // code points, as Python's len()

  function intl(Ctor, locale, opts) {
    try { return new Ctor(locale, opts); } catch { return new Ctor('en', opts); }
  }

  function strings(locale) {
    const lang = locale.toLowerCase();
    return { ...STRINGS.en, ...(STRINGS[lang] || STRINGS[lang.split('-')[0]]) };
  }

  // Only http(s) URLs become links or get posted; a bare "example.com" gets https:// in front.
  function normalizeUrl(s) {
    if (!/^[a-z][a-z\d+.-]*:\/\//i.test(s) && /^[\w-]+(\.[\w-]+)+(?=$|[/:?#])/.test(s)) s = 'https://' + s;
    try {
      const u = new URL(s);
      return /^https?:$/.test(u.protocol) && u.hostname && !/\s/.test(s) ? s : null;
    } catch {
      return null;
    }
  }

  function addStylesheet() {
    const href = ORIGIN + '/widget.css';
    if ([...document.querySelectorAll('link[rel~="stylesheet"]')].some((l) => l.href === href)) return;
    // Prepended, so host-page rules of equal specificity win over the widget's defaults.
    (document.head || document.documentElement).prepend(h('link', { rel: 'stylesheet', href }));
  }

  function focusEl(el) {
    if (!el) return;
    if (!el.matches('a[href],button,input,textarea,select')) el.tabIndex = -1;
    el.focus();
  }

  // One request to the API. Resolves {ok, status, json}; rejects only on network failure.
  async function api(method, query, body) {
    const headers = {};
    const token = store.get(TOKEN_KEY);
    if (token) headers['X-Comment-Token'] = token;
    if (body) headers['Content-Type'] = 'application/json';
    const res = await fetch(query ? API + '?' + new URLSearchParams(query) : API, {
      method,
      headers,
      body: body && JSON.stringify(body),
      credentials: 'omit',
    });
    let json = null;
    try { json = await res.json(); } catch { /* empty or non-JSON body */ }
    return { ok: res.ok, status: res.status, json: json || {} };
  }

  function mount(root) {
    const d = root.dataset;
    const site = d.site;
    const thread = d.thread || location.pathname;
    if (!site) return;
    const locale = d.locale || 'en';
    const S = strings(locale);
    const dateFmt = intl(Intl.DateTimeFormat, locale, { dateStyle: 'long', timeStyle: 'short' });
    const numFmt = intl(Intl.NumberFormat, locale);
    const plural = intl(Intl.PluralRules, locale);
    const theme = ['light', 'dark'].includes(d.theme) ? d.theme : 'auto';

    const state = { count: 0, open: true, maxDepth: 1, cursor: null, replyTo: null, busy: false };
    const nodes = new Map(); // comment id -> its <li>
    let heading, list, more, status, home, respond, form, title, cancel, alert, submitBtn, consent, honeypot;
    const inputs = {};
    const errs = {};

    addStylesheet();
    root.classList.add('comments-js', 'comments-widget', 'comments-theme-' + theme);
    const hadFallback = root.children.length > 0;

    function start() {
      // A server-rendered no-JS fallback stays visible (and usable) until the widget can replace it.
      if (!hadFallback) {
        root.replaceChildren(h('p', { class: 'comments-loading', text: S.loading }));
        root.setAttribute('aria-busy', 'true');
      }
      api('GET', { site, thread })
        .then((r) => {
          if (!r.ok) throw r;
          build(r.json);
        })
        .catch((r) => {
          root.removeAttribute('aria-busy');
          if (hadFallback) return;
          const msg = (r && r.json && r.json.detail) || S.loadError;
          root.replaceChildren(h('p', { class: 'comments-load-error', role: 'alert' }, msg + ' ',
            h('button', { type: 'button', class: 'comments-button', onclick: start }, S.retry)));
        });
    }

    function countText(n) {
      const forms = S.count;
      const text = n === 0 ? forms.zero : forms[plural.select(n)] || forms.other;
      return fill(text, { n: numFmt.format(n) });
    }

    function build(data) {
      const t = data.thread || {};
      state.count = t.count || 0;
      state.open = t.open !== false;
      state.maxDepth = data.max_depth ?? 1;
      heading = h('h2', { class: 'comments-title', id: 'comments-title', text: countText(state.count) });
      list = h('ol', { class: 'comment-list' });
      more = h('button', { type: 'button', class: 'comments-button comments-more', onclick: loadMore }, S.more);
      status = h('div', { class: 'comments-status', role: 'status', 'aria-live': 'polite' });
      respond = state.open ? buildForm() : h('p', { class: 'comments-closed', text: S.closed });
      home = h('div', { class: 'comments-respond-home' }, respond);
      addComments(data.comments || []);
      setCursor(data.next_cursor);
      root.replaceChildren(heading, list, more, status, home);
      root.removeAttribute('aria-busy');
      if (state.open) prefill();
      // The browser scrolled before these comments existed; honour a #comment-ID link now.
      const m = /^#(comment-\d+)$/.exec(location.hash);
      if (m) document.getElementById(m[1])?.scrollIntoView();
    }

    function setCursor(c) {
      state.cursor = c || null;
      more.hidden = !state.cursor;
    }

    function childList(li) {
      let ol = li.querySelector(':scope > ol.children');
      if (!ol) li.append((ol = h('ol', { class: 'children' })));
      return ol;
    }

    // Append comments given in display order; returns the first new <li>.
    function addComments(comments) {
      let first = null;
      // Roots posted in this page view sit at the end; later pages go before them.
      const firstLocal = list.querySelector(':scope > .comment-local');
      for (const c of comments) {
        if (nodes.has(c.id)) continue;
        const li = renderComment(c);
        const parent = c.parent_id != null && nodes.get(c.parent_id);
        if (parent) childList(parent).append(li);
        else list.insertBefore(li, firstLocal);
        nodes.set(c.id, li);
        first = first || li;
      }
      return first;
    }

    function renderComment(c) {
      const id = 'comment-' + c.id;
      const name = (c.author && c.author.name) || S.anonymous;
      const url = c.author && c.author.url && normalizeUrl(c.author.url);
      const pending = c.status === 'pending';
      const date = new Date(c.created_at);
      const content = h('div', { class: 'comment-content' });
      content.innerHTML = c.html || ''; // sanitized by the server at write time
      const article = h('article', { class: 'comment-body', 'aria-labelledby': id + '-author' },
        h('header', { class: 'comment-meta' },
          h('span', { class: 'comment-author', id: id + '-author' },
            url ? h('a', { class: 'url', href: url, rel: 'nofollow ugc' }, name) : name),
          ' ',
          h('a', { class: 'comment-permalink', href: '#' + id },
            h('time', { datetime: c.created_at }, isNaN(date) ? String(c.created_at) : dateFmt.format(date)))),
        pending && h('p', { class: 'comment-awaiting-moderation', text: S.pending }),
        content);
      const li = h('li', { id, class: `comment depth-${c.depth || 0}${pending ? ' comment-pending' : ''}` }, article);
      // Replies must target an approved comment, and the site caps the depth.
      if (state.open && !pending && (c.depth || 0) < state.maxDepth - 1) {
        article.append(h('div', { class: 'reply' },
          h('button', {
            type: 'button',
            class: 'comment-reply-link',
            'aria-label': fill(S.replyTo, { name }),
            onclick: () => startReply(c.id, name),
          }, S.reply)));
      }
      return li;
    }

    async function loadMore() {
      if (state.busy || !state.cursor) return;
      state.busy = true;
      more.setAttribute('aria-busy', 'true');
      try {
        const r = await api('GET', { site, thread, cursor: state.cursor });
        if (!r.ok) throw r;
        const first = addComments(r.json.comments || []);
        setCursor(r.json.next_cursor);
        if (first) focusEl(first.firstChild);
      } catch (r) {
        announce((r && r.json && r.json.detail) || S.loadError);
      } finally {
        state.busy = false;
        more.removeAttribute('aria-busy');
      }
    }

    function announce(msg) {
      // Clear first so that the same message twice is announced twice.
      status.textContent = '';
      setTimeout(() => { status.textContent = msg; }, 50);
    }

    function buildForm() {
      const field = (key, label, input, required, describedBy) => {
        const id = 'comments-' + key;
        Object.assign(input, { id, name: key });
        if (describedBy) input.setAttribute('aria-describedby', describedBy);
        inputs[key] = input;
        errs[key] = h('span', { class: 'comments-field-error', id: id + '-error' });
        input.addEventListener('input', () => setError(key, ''));
        return h('p', { class: 'comment-form-' + key },
          // The asterisk sits outside the label so that the label text is exactly the field name.
          h('label', { for: id, text: label }), required && ' ',
          required && h('span', { class: 'required', 'aria-hidden': 'true', text: '*' }),
          input, errs[key]);
      };
      title = h('span', { text: S.leaveReply });
      cancel = h('button', { type: 'button', class: 'comments-cancel-reply', hidden: true, onclick: () => cancelReply(true) }, S.cancelReply);
      alert = h('div', { class: 'comments-alert', role: 'alert' });
      submitBtn = h('button', { type: 'submit', class: 'comments-button comments-submit' }, S.submit);
      consent = h('input', { type: 'checkbox', id: 'comments-consent', name: 'consent', value: 'yes' });
      honeypot = h('input', { type: 'text', id: 'comments-leave-blank', name: 'leave_blank', tabindex: '-1', autocomplete: 'off', 'aria-hidden': 'true' });
      const trap = h('p', { class: 'comments-hp', 'aria-hidden': 'true' },
        h('label', { for: 'comments-leave-blank', text: S.honeypot }), honeypot);
      // Kept off-screen even if widget.css fails to load (CSSOM writes are allowed under CSP).
      Object.assign(trap.style, { position: 'absolute', left: '-10000px', width: '1px', height: '1px', overflow: 'hidden' });
      form = h('form', { class: 'comment-form', id: 'comments-form', novalidate: true, 'aria-labelledby': 'comments-reply-title', onsubmit: submit },
        h('p', { class: 'comment-notes' },
          h('span', { id: 'comments-email-notes', text: S.emailNote }), ' ',
          h('span', { class: 'required-field-message' }, S.requiredNote + ' ', h('span', { class: 'required', text: '*' }))),
        field('content', S.comment, h('textarea', { rows: 6, required: true, autocomplete: 'off', maxlength: 65525 }), true),
        field('name', S.name, h('input', { type: 'text', required: true, autocomplete: 'name', maxlength: 245 }), true),
        field('email', S.email, h('input', { type: 'email', required: true, autocomplete: 'email', maxlength: 100 }), true, 'comments-email-notes'),
        field('url', S.url, h('input', { type: 'url', autocomplete: 'url', maxlength: 200 })),
        trap,
        h('p', { class: 'comment-form-cookies-consent' }, consent, ' ', h('label', { for: 'comments-consent', text: S.consent })),
        alert,
        h('p', { class: 'form-submit' }, submitBtn));
      return h('div', { class: 'comment-respond', id: 'respond' },
        h('div', { class: 'comment-reply-heading' },
          h('h3', { class: 'comment-reply-title', id: 'comments-reply-title' }, title), cancel),
        form);
    }

    function prefill() {
      let saved = null;
      try { saved = JSON.parse(store.get(AUTHOR_KEY)); } catch { /* ignore corrupt data */ }
      if (!saved || typeof saved !== 'object') return;
      for (const k of ['name', 'email', 'url']) if (typeof saved[k] === 'string') inputs[k].value = saved[k];
      consent.checked = true;
    }

    function startReply(id, name) {
      const li = nodes.get(id);
      state.replyTo = id;
      title.textContent = fill(S.replyTo, { name });
      cancel.hidden = false;
      li.firstChild.after(respond); // under the comment, above its replies, as WordPress does
      inputs.content.focus();
    }

    function cancelReply(restoreFocus) {
      const id = state.replyTo;
      state.replyTo = null;
      title.textContent = S.leaveReply;
      cancel.hidden = true;
      home.append(respond);
      if (restoreFocus) nodes.get(id)?.querySelector('.comment-reply-link')?.focus();
    }

    function setError(key, msg) {
      const input = inputs[key];
      const errId = errs[key].id;
      const ids = (input.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== errId);
      errs[key].textContent = msg;
      if (msg) {
        ids.push(errId);
        input.setAttribute('aria-invalid', 'true');
      } else {
        input.removeAttribute('aria-invalid');
      }
      if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
      else input.removeAttribute('aria-describedby');
    }

    function formError(msg, focus) {
      alert.textContent = msg;
      if (msg && focus) focusEl(alert);
    }

    // errors: [{field, message}] in any order. Field errors go next to their inputs; the rest to the alert.
    function showErrors(errors, detail) {
      const other = [];
      for (const e of errors) {
        const key = String(e.field || '').split('.').pop();
        if (inputs[key]) {
          if (!errs[key].textContent) setError(key, e.message || detail || S.failed);
        } else if (e.message) {
          other.push(e.message);
        }
      }
      const first = FIELDS.find((k) => errs[k].textContent);
      if (other.length || !first) formError(other.join(' ') || detail || S.failed, !first);
      if (first) inputs[first].focus();
    }

    function validate(v) {
      const out = [];
      const add = (field, key) => out.push({ field, message: S[key] });
      if (!v.content) add('content', 'contentRequired');
      else if (bytes(v.content) > 65525) add('content', 'contentLong');
      if (!v.name) add('name', 'nameRequired');
      else if (chars(v.name) > 245) add('name', 'nameLong');
      if (!v.email) add('email', 'emailRequired');
      else if (chars(v.email) > 100) add('email', 'emailLong');
      else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.email)) add('email', 'emailInvalid');
      if (v.url) {
        const u = normalizeUrl(v.url);
        if (u && chars(u) > 200) add('url', 'urlLong');
        else if (u) v.url = inputs.url.value = u;
        else if (chars(v.url) > 200) add('url', 'urlLong');
        else add('url', 'urlInvalid');
      }
      return out;
    }

    async function submit(ev) {
      ev.preventDefault();
      if (state.busy) return;
      for (const k of FIELDS) setError(k, '');
      formError('');
      const v = {};
      for (const k of FIELDS) v[k] = inputs[k].value.trim();
      const invalid = validate(v);
      if (invalid.length) return showErrors(invalid);

      // aria-disabled rather than disabled: a disabled button would drop keyboard focus.
      state.busy = true;
      submitBtn.setAttribute('aria-disabled', 'true');
      form.setAttribute('aria-busy', 'true');
      let r = null;
      try {
        r = await api('POST', null, {
          site,
          thread,
          thread_title: d.title || document.title || null,
          thread_url: d.url || articleUrl(),
          parent_id: state.replyTo,
          content: v.content,
          name: v.name,
          email: v.email,
          url: v.url || null,
          leave_blank: honeypot.value,
        });
      } catch { /* network failure, handled below */ }
      state.busy = false;
      submitBtn.removeAttribute('aria-disabled');
      form.removeAttribute('aria-busy');

      if (!r) return formError(S.network, true);
      if (r.ok) return posted(r.json, v);
      const j = r.json;
      if (Array.isArray(j.errors) && j.errors.length) showErrors(j.errors, j.detail);
      else formError(j.detail || S.failed, true);
    }

    function posted(j, v) {
      if (j.token) store.set(TOKEN_KEY, j.token);
      if (consent.checked) store.set(AUTHOR_KEY, JSON.stringify({ name: v.name, email: v.email, url: v.url }));
      else store.del(AUTHOR_KEY);
      inputs.content.value = '';
      if (state.replyTo != null) cancelReply(false);
      const c = j.comment;
      let li = null;
      if (c && !nodes.has(c.id)) {
        li = renderComment(c);
        li.classList.add('comment-local');
        const parent = c.parent_id != null && nodes.get(c.parent_id);
        (parent ? childList(parent) : list).append(li);
        nodes.set(c.id, li);
        if (c.status === 'approved') heading.textContent = countText(++state.count);
      }
      announce(j.message || (c && c.status === 'pending' ? S.pending : S.posted));
      if (li) focusEl(li.firstChild);
    }

    start();
  }

  function init() {
    const root = document.getElementById('comments');
    // comments-js, not comments-widget: a server-rendered fallback may carry that class for its styles.
    if (!root || root.classList.contains('comments-js')) return; // already mounted
    mount(root);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
