'use strict';
/** The reference: a bare Express 5 "hello" on PORT, nothing else (no logging, no middleware). */
const express = require('express');
const { serve } = require('./serve');

const app = express();
app.get('/', function hello(_req, res) {
  res.send('hello');
});
serve(app);
