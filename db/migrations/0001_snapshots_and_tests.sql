CREATE TABLE "connection_tests" (
	"id" text PRIMARY KEY NOT NULL,
	"data_source_id" text NOT NULL,
	"tested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"success" boolean NOT NULL,
	"response_time" double precision NOT NULL,
	"error_code" text,
	"trigger" text DEFAULT 'manual' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "schema_snapshots" (
	"id" text PRIMARY KEY NOT NULL,
	"data_source_id" text NOT NULL,
	"discovered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"hash" text NOT NULL,
	"schema" jsonb NOT NULL
);
--> statement-breakpoint
ALTER TABLE "connection_tests" ADD CONSTRAINT "connection_tests_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "public"."data_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schema_snapshots" ADD CONSTRAINT "schema_snapshots_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "public"."data_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "connection_tests_source_idx" ON "connection_tests" USING btree ("data_source_id","tested_at");--> statement-breakpoint
CREATE INDEX "schema_snapshots_source_idx" ON "schema_snapshots" USING btree ("data_source_id","discovered_at");