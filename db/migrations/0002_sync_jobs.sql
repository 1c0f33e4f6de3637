CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"data_source_id" text,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"dedupe_key" text,
	"status" text DEFAULT 'queued' NOT NULL,
	"run_at" timestamp with time zone DEFAULT now() NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 1 NOT NULL,
	"locked_by" text,
	"locked_until" timestamp with time zone,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "jobs_dedupe_key_unique" UNIQUE("dedupe_key")
);
--> statement-breakpoint
CREATE TABLE "sync_settings" (
	"data_source_id" text PRIMARY KEY NOT NULL,
	"schedule" text,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"mode" text DEFAULT 'full_refresh' NOT NULL,
	"streams" jsonb,
	"cursor_columns" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"next_run_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sync_stream_states" (
	"data_source_id" text NOT NULL,
	"stream" text NOT NULL,
	"table_name" text NOT NULL,
	"row_count" integer DEFAULT 0 NOT NULL,
	"cursor_column" text,
	"cursor_value" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sync_stream_states_data_source_id_stream_pk" PRIMARY KEY("data_source_id","stream")
);
--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD COLUMN "status" text DEFAULT 'QUEUED' NOT NULL;--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD COLUMN "trigger" text DEFAULT 'manual' NOT NULL;--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD COLUMN "requested_by_id" text;--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD COLUMN "job_id" text;--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD COLUMN "attempt" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD COLUMN "stream_results" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "public"."data_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sync_settings" ADD CONSTRAINT "sync_settings_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "public"."data_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sync_stream_states" ADD CONSTRAINT "sync_stream_states_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "public"."data_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_claim_idx" ON "jobs" USING btree ("status","run_at");--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_one_active_sync_idx" ON "jobs" USING btree ("data_source_id") WHERE "jobs"."kind" = 'sync' and "jobs"."status" in ('queued', 'running');--> statement-breakpoint
CREATE INDEX "sync_settings_next_run_idx" ON "sync_settings" USING btree ("next_run_at");--> statement-breakpoint
ALTER TABLE "data_source_sync_logs" ADD CONSTRAINT "data_source_sync_logs_requested_by_id_users_id_fk" FOREIGN KEY ("requested_by_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "sync_logs_status_idx" ON "data_source_sync_logs" USING btree ("status");--> statement-breakpoint
-- Logs written before runs had a status: derive it from what they recorded.
UPDATE "data_source_sync_logs" SET "status" = CASE WHEN "success" THEN 'SUCCEEDED' ELSE 'FAILED' END WHERE "completed_at" IS NOT NULL;
