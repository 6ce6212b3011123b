CREATE TABLE accounts (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	webhook_secret VARCHAR(64) NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE budget_counters (
	id VARCHAR(400) NOT NULL, 
	spent_micros BIGINT NOT NULL, 
	reserved_micros BIGINT NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE budget_limits (
	id VARCHAR(400) NOT NULL, 
	limit_micros BIGINT NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_by VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE eval_runs (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	dataset VARCHAR(1000) NOT NULL, 
	dataset_hash VARCHAR(64) NOT NULL, 
	complete BOOLEAN NOT NULL, 
	subject JSON, 
	summary JSON, 
	items JSON, 
	note TEXT, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_eval_runs_created_at ON eval_runs (created_at);

CREATE TABLE index_promotions (
	id SERIAL NOT NULL, 
	version INTEGER NOT NULL, 
	previous_version INTEGER, 
	action VARCHAR(16) NOT NULL, 
	forced BOOLEAN NOT NULL, 
	reason TEXT NOT NULL, 
	by VARCHAR(255) NOT NULL, 
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE index_versions (
	version SERIAL NOT NULL, 
	collection VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	source TEXT NOT NULL, 
	source_checksum VARCHAR(64), 
	document_count INTEGER NOT NULL, 
	chunk_count INTEGER NOT NULL, 
	token_count INTEGER NOT NULL, 
	embedding_model VARCHAR(255) NOT NULL, 
	embedding_dim INTEGER NOT NULL, 
	chunker JSON, 
	base_version INTEGER, 
	reused_chunks INTEGER NOT NULL, 
	embedded_chunks INTEGER NOT NULL, 
	checks JSON, 
	built_by VARCHAR(255) NOT NULL, 
	error TEXT, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITHOUT TIME ZONE, 
	duration_ms FLOAT, 
	promoted_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (version)
);

CREATE TABLE prompt_versions (
	version VARCHAR(128) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	content TEXT NOT NULL, 
	first_seen_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (version)
);

CREATE INDEX ix_prompt_versions_name ON prompt_versions (name);

CREATE TABLE api_keys (
	id VARCHAR(16) NOT NULL, 
	account_id VARCHAR(32) NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	secret_hash VARCHAR(64) NOT NULL, 
	roles JSON, 
	groups JSON, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITHOUT TIME ZONE, 
	revoked_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_api_keys_account_id ON api_keys (account_id);

CREATE TABLE jobs (
	id VARCHAR(32) NOT NULL, 
	account_id VARCHAR(32) NOT NULL, 
	key_id VARCHAR(16), 
	groups JSON, 
	idempotency_key VARCHAR(255), 
	request_hash VARCHAR(64) NOT NULL, 
	request_id VARCHAR(64), 
	question TEXT NOT NULL, 
	user_id VARCHAR(255), 
	feature VARCHAR(255), 
	metadata JSON, 
	priority VARCHAR(8) NOT NULL, 
	callback_url TEXT, 
	decided_by VARCHAR(255), 
	status VARCHAR(16) NOT NULL, 
	reason VARCHAR(32), 
	error TEXT, 
	answer TEXT, 
	citations JSON, 
	confidence FLOAT, 
	prompt_version VARCHAR(128), 
	model_id VARCHAR(255), 
	index_version VARCHAR(64), 
	scorer_version VARCHAR(64), 
	passages JSON, 
	stage_timings JSON, 
	guardrails JSON, 
	confidence_inputs JSON, 
	trace JSON, 
	reservation JSON, 
	attempts INTEGER NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	deadline_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	dispatched_at TIMESTAMP WITHOUT TIME ZONE, 
	started_at TIMESTAMP WITHOUT TIME ZONE, 
	lease_expires_at TIMESTAMP WITHOUT TIME ZONE, 
	finished_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	UNIQUE (account_id, idempotency_key), 
	FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_jobs_account_id ON jobs (account_id);

CREATE INDEX ix_jobs_created_at ON jobs (created_at);

CREATE INDEX ix_jobs_status ON jobs (status);

CREATE TABLE usage_records (
	id SERIAL NOT NULL, 
	account_id VARCHAR(32) NOT NULL, 
	feature VARCHAR(255) NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	model_id VARCHAR(255) NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cost_micros BIGINT NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_usage_records_account_id ON usage_records (account_id);

CREATE INDEX ix_usage_records_created_at ON usage_records (created_at);

CREATE INDEX ix_usage_records_job_id ON usage_records (job_id);

CREATE TABLE deliveries (
	id VARCHAR(40) NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	account_id VARCHAR(32) NOT NULL, 
	url TEXT NOT NULL, 
	event VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	last_status_code INTEGER, 
	last_error TEXT, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	delivered_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE INDEX ix_deliveries_account_id ON deliveries (account_id);

CREATE INDEX ix_deliveries_job_id ON deliveries (job_id);

CREATE INDEX ix_deliveries_next_attempt_at ON deliveries (next_attempt_at);

CREATE INDEX ix_deliveries_status ON deliveries (status);

CREATE TABLE review_items (
	id SERIAL NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	account_id VARCHAR(32) NOT NULL, 
	reason VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	priority INTEGER NOT NULL, 
	due_at TIMESTAMP WITHOUT TIME ZONE, 
	sla_breached BOOLEAN NOT NULL, 
	draft_answer TEXT, 
	claimed_by VARCHAR(16), 
	claimed_by_name VARCHAR(255), 
	claim_expires_at TIMESTAMP WITHOUT TIME ZONE, 
	decision VARCHAR(16), 
	final_answer TEXT, 
	reason_code VARCHAR(32), 
	note TEXT, 
	decided_by VARCHAR(255), 
	decided_at TIMESTAMP WITHOUT TIME ZONE, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (job_id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE INDEX ix_review_items_account_id ON review_items (account_id);

CREATE INDEX ix_review_items_created_at ON review_items (created_at);

CREATE INDEX ix_review_items_due_at ON review_items (due_at);

CREATE INDEX ix_review_items_status ON review_items (status);
