'use strict';
/**
 * Jest reporter for the reliability suite: prints the closing line
 * `N passed, N failed` and writes the figures the tests recorded (flows
 * completed, faults survived, inputs tried) with every test's outcome into
 * bench/RESULTS.md's Reliability section.
 */
const { execSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { writeSection } = require('../../bench/results');

const ROOT = path.join(__dirname, '..', '..');
const FIGURES_DIR = path.join(ROOT, 'test-output', 'reliability');

function commit() {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    const dirty = execSync('git status --porcelain -- src views', { cwd: ROOT }).toString().trim() !== '';
    return dirty ? `${head} + uncommitted changes in src/ or views/` : head;
  } catch {
    return 'unknown';
  }
}

const cell = (text) => String(text).replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();

/** The gist of a failure: the first lines of what was received (a jest diff), else its first line. */
function gist(message) {
  // eslint-disable-next-line no-control-regex -- jest colours its messages
  const lines = message.replace(/\u001b\[[0-9;]*m/g, '').split('\n');
  const received = [...new Set(lines.filter((line) => /^\s*\+ {3,}\S/.test(line) && !/^\s*\+\s+(Array \[|Object \{|\]|\},?|"ms":.*|"phase":.*)$/.test(line)).map((line) => line.trim()))].slice(0, 2);
  const first = lines.find((line) => line.trim() && !line.includes('expect(')) ?? lines[0] ?? '';
  return (received.length ? received.map((line) => line.replace(/^\+\s+/, '')).join(' ') : first).slice(0, 200);
}

class ReliabilitySummaryReporter {
  onRunStart() {
    this.started = Date.now();
    fs.rmSync(FIGURES_DIR, { recursive: true, force: true });
  }

  onRunComplete(_contexts, results) {
    const suitesThatFailedToRun = results.testResults.filter((suite) => suite.testExecError);
    const passed = results.numPassedTests;
    const failed = results.numFailedTests + suitesThatFailedToRun.length;

    const figures = {};
    if (fs.existsSync(FIGURES_DIR)) {
      for (const file of fs.readdirSync(FIGURES_DIR).sort()) Object.assign(figures, JSON.parse(fs.readFileSync(path.join(FIGURES_DIR, file), 'utf8')));
    }
    const lines = ['## Reliability', ''];
    lines.push(`Run ${new Date().toISOString()} · commit ${commit()} · ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}) · Node ${process.version} · ${((Date.now() - this.started) / 1000).toFixed(0)} s · **${passed} passed, ${failed} failed**`);
    lines.push('');
    lines.push('| figure | value |', '|---|---|');
    for (const [name, value] of Object.entries(figures)) lines.push(`| ${cell(name)} | ${cell(value)} |`);
    lines.push('');
    lines.push('| test | result |', '|---|---|');
    for (const suite of results.testResults) {
      const file = path.relative(ROOT, suite.testFilePath);
      if (suite.testExecError) lines.push(`| ${cell(file)} | **failed to run**: ${cell(suite.testExecError.message.split('\n')[0])} |`);
      for (const test of suite.testResults) {
        const why = test.status === 'failed' ? `: ${cell(gist(test.failureMessages[0] ?? ''))}` : '';
        lines.push(`| ${cell(test.fullName)} | ${test.status === 'passed' ? 'passed' : `**${test.status}**${why}`} |`);
      }
    }
    try {
      writeSection('reliability', `${lines.join('\n')}\n`);
    } catch (error) {
      process.stderr.write(`could not write bench/RESULTS.md: ${error.message}\n`);
    }
    // after Jest's own summary, whatever order the reporters run in: the run's last line
    process.once('exit', () => process.stdout.write(`${passed} passed, ${failed} failed\n`));
  }
}

module.exports = ReliabilitySummaryReporter;
