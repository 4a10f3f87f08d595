"""The layout of a run folder and the SQLite schema of ``run.sqlite``, documented column by column.

A campaign writes one folder per run; the folder name is the run id::

    <runs_dir>/<run-id>/
        run.sqlite                          this schema (WAL mode)
        candidates/<candidate_id>/source.py     the code the Coder wrote, exactly as evaluated
        candidates/<candidate_id>/verdict.json  the full Verdict (kernelloop.sandbox.verdict)
        candidates/<candidate_id>/build.log     the (truncated) compiler output from the verdict
        llm/<call_id>.request.json          model, role and the full messages sent
        llm/<call_id>.response.json         the LLMResult: reply text, tokens, cost, latency

Paths stored in the database are relative to the run folder, so a run folder can be moved or
copied whole. Timestamps are ISO 8601 in UTC with milliseconds (they sort as text). JSON columns
hold compact JSON text. Readers check ``meta.schema_version``; a writer that changes this schema
bumps :data:`SCHEMA_VERSION` and adds a migration, so old runs stay readable.

Versions: 1 the first; 2 added ``candidates.builtin_config``.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# The statements that bring a run from the version before up to each version. Readers never
# migrate: a column a run lacks reads as None (rows.from_db), so opening an old run (a committed
# benchmark, a read-only copy) writes nothing. A writer that needs a newer column upgrades the
# run first (RunStore._upgrade). New columns go last, so a migrated table matches DDL's order.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE candidates ADD COLUMN builtin_config TEXT",),
}

RUN_STATUSES = ("running", "finished", "failed", "interrupted")
# A finished problem says whether it ended with a verified kernel (solved) or without (unsolved).
PROBLEM_STATUSES = ("running", "solved", "unsolved", "finished", "failed", "interrupted")
CANDIDATE_MODES = ("baseline", "initial", "repair", "optimize")
ADVICE_MODES = ("repair", "optimize")
LLM_ROLES = ("coder", "judge")
LLM_STATUSES = ("ok", "error")

DATABASE = "run.sqlite"
CANDIDATES_DIR = "candidates"
LLM_DIR = "llm"

# Applied to every connection: WAL lets the dashboard read while a campaign writes; the busy
# timeout covers a second process (dashboard, `runs show`) holding the lock for a moment.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)

DDL = """
-- Run-level facts as key/value text. Keys:
--   schema_version  this file's SCHEMA_VERSION, as text
--   created_at      when the run folder was made
--   status          running | finished | failed | interrupted
--   finished_at     set when status leaves 'running'
--   config          JSON: problems, models, rounds, candidates per round, backend, size, budget
--   kernelloop_version
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);

-- One row per problem the campaign started.
CREATE TABLE problems (
    problem_id        TEXT PRIMARY KEY,          -- kernelbench Problem.id, e.g. 'level1/01_relu'
    status            TEXT NOT NULL CHECK (status IN
                          ('running', 'solved', 'unsolved', 'finished', 'failed', 'interrupted')),
    rounds_done       INTEGER NOT NULL DEFAULT 0, -- rounds completed, as the campaign reports them
    best_candidate_id TEXT,                       -- kept current as verdicts arrive
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    stop_reason       TEXT                        -- 'rounds', 'budget_usd', 'plateau', ...
);

-- One row per candidate kernel; evaluation columns stay NULL until its verdict is recorded.
CREATE TABLE candidates (
    candidate_id        TEXT PRIMARY KEY,         -- '<slug(problem_id)>-r<round>-c<idx>'
    problem_id          TEXT NOT NULL REFERENCES problems(problem_id),
    round               INTEGER NOT NULL,         -- the campaign's round number (0 first)
    idx                 INTEGER NOT NULL,         -- position within the round
    parent_id           TEXT REFERENCES candidates(candidate_id),  -- kernel it branched from
    mode                TEXT NOT NULL CHECK (mode IN ('baseline', 'initial', 'repair', 'optimize')),
    source_sha256       TEXT NOT NULL,
    source_path         TEXT NOT NULL,            -- candidates/<id>/source.py
    created_at          TEXT NOT NULL,
    accepted            INTEGER CHECK (accepted IN (0, 1)),  -- NULL: not evaluated yet
    codes               TEXT,                     -- JSON list of reason codes, [] when accepted
    backend             TEXT,                     -- triton | cuda | cuda-inline, from the verdict
    device              TEXT,                     -- where it ran, from the verdict
    median_ms           REAL,                     -- candidate median time; NULL without a GPU
    speedup_eager       REAL,                     -- eager time / candidate time (point)
    speedup_eager_low   REAL,                     -- bootstrap confidence interval bounds
    speedup_eager_high  REAL,
    speedup_compile     REAL,                     -- torch.compile time / candidate time
    speedup_compile_low REAL,
    speedup_compile_high REAL,
    verdict_path        TEXT,                     -- candidates/<id>/verdict.json
    evaluated_at        TEXT,
    builtin_config      TEXT,                     -- JSON: the builtin coder's templates, configs
                                                  -- and plan; NULL for any other Coder's kernel
    UNIQUE (problem_id, round, idx)
);
CREATE INDEX candidates_by_problem ON candidates (problem_id, round, idx);

-- One row per LLM request that reached the client (after its own retries).
CREATE TABLE llm_calls (
    call_id           TEXT PRIMARY KEY,           -- '<slug(problem_id)>-r<round>-<role>-<n>'
    idem_key          TEXT UNIQUE,                -- the caller's key; NULL on superseded errors
    problem_id        TEXT NOT NULL,
    round             INTEGER NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('coder', 'judge')),
    model             TEXT NOT NULL,              -- as configured; the reply file has the server's
    prompt_tokens     INTEGER,                    -- NULL when the provider did not say
    completion_tokens INTEGER,
    cost_usd          REAL,                       -- NULL when unknown (no price); never 0 for that
    latency_s         REAL,
    attempts          INTEGER,
    status            TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error             TEXT,
    request_path      TEXT NOT NULL,              -- llm/<call_id>.request.json
    response_path     TEXT,                       -- llm/<call_id>.response.json; NULL: no reply
    created_at        TEXT NOT NULL
);
CREATE INDEX llm_calls_by_problem ON llm_calls (problem_id, round);

-- The Judge's advice for a round (optionally about one candidate); the latest write wins.
CREATE TABLE advice (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    problem_id   TEXT NOT NULL,
    round        INTEGER NOT NULL,
    candidate_id TEXT,
    mode         TEXT NOT NULL CHECK (mode IN ('repair', 'optimize')),
    advice       TEXT NOT NULL,                   -- JSON object from the Judge
    llm_call_id  TEXT REFERENCES llm_calls(call_id),
    created_at   TEXT NOT NULL
);
CREATE INDEX advice_by_problem ON advice (problem_id, round);

-- Progress and log lines, in order; payload is a JSON object.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         TEXT NOT NULL,
    problem_id TEXT,
    kind       TEXT NOT NULL,                     -- 'round_started', 'candidate_evaluated', ...
    payload    TEXT NOT NULL
);
"""
