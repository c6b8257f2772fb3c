#!/usr/bin/env bash
# A Java runtime for the Spark engine and its tests: Debian's OpenJDK 17 (Spark 4 runs on 17 or 21).
# Installs only when `java` is missing; needs root (apt-get), as on CI and the dev machines.
set -euo pipefail
if command -v java >/dev/null 2>&1 || { [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; }; then
    exit 0
fi
echo "java.sh: installing openjdk-17-jre-headless" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends openjdk-17-jre-headless
java -version
