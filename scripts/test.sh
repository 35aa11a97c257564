#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every unit, property and end-to-end test.
# The end-to-end tests start the real bydata binary on free loopback ports. What else they use is installed
# here when missing: VictoriaMetrics (Debian), the peer whose InfluxDB write API the InfluxDB adapter is tested
# against; Mosquitto (Debian), standing in for a network server's MQTT broker; mosquitto-clients (Debian),
# whose mosquitto_pub the README and management-page tests run; Chromium and chromium-driver (Debian), for the
# dashboard's and the management pages' browser tests (screenshots land in target/test-artifacts/); Node.js and
# npm (Debian) with oidc-provider (npm, pinned in testing/oidc-provider/package-lock.json), the OpenID Provider
# the login tests run on loopback; the official InfluxDB Python client is installed by its test into a venv
# under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v victoria-metrics >/dev/null; then
  echo "== installing victoria-metrics (Debian package)"
  apt-get install -y -q victoria-metrics >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q victoria-metrics >/dev/null; }
fi

if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  echo "== installing mosquitto (Debian package)"
  apt-get install -y -q mosquitto >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q mosquitto >/dev/null; }
fi

if ! command -v mosquitto_pub >/dev/null; then
  echo "== installing mosquitto-clients (Debian package, for the README test's mosquitto_pub)"
  apt-get install -y -q mosquitto-clients >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q mosquitto-clients >/dev/null; }
fi

if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (Debian package, for the dashboard's browser test)"
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing nodejs and npm (Debian packages, for the OpenID Provider of the login tests)"
  apt-get install -y -q nodejs npm >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nodejs npm >/dev/null; }
fi

if [ ! -d testing/oidc-provider/node_modules/oidc-provider ]; then
  echo "== installing oidc-provider (npm ci, versions pinned by its package-lock.json)"
  (cd testing/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! command -v chromedriver >/dev/null; then
  echo "== installing chromium-driver (Debian package, for the management pages' browser test)"
  apt-get install -y -q chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium-driver >/dev/null; }
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== import cycles between files (crates listed here are kept free of them)"
python3 scripts/import_cycles.py store opendata forward alerts notify energy influxql
echo "== cargo test"
cargo test --workspace --all-targets --locked
