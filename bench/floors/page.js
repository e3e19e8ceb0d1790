'use strict';
/** What the page floors send: about the warning page's 1.6 KB of HTML, the same bytes for every visitor. */
const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Connect</title></head><body><main>${'<p>What the site asks for, in words.</p>'.repeat(33)}<form method="post" action="/connect"><input type="hidden" name="perm_doc" value="read"><button type="submit">Continue</button></form></main></body></html>`;

module.exports = { page };
