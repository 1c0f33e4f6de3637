#!/usr/bin/env bash
# Server-side fixtures for the connector tests; safe to run again.
set -euo pipefail
