// Evaluated in every codec's context before the codec itself. Everything the host needs later is captured here,
// so a codec that replaces JSON, Date or Object.prototype methods changes only its own results, never the host's
// reading of them.
(function (global) {
  "use strict";
  var RealDate = global.Date;
  var jsonStringify = global.JSON.stringify;
  var jsonParse = global.JSON.parse;
  var toNumber = global.Number;
  var construct = global.Reflect.construct;
  var defineProperty = global.Object.defineProperty;
  var create = global.Object.create;
  var freeze = global.Object.freeze;
  var nowMs = 0;

  function hide(object, name, value) {
    defineProperty(object, name, { value: value, writable: true, configurable: true, enumerable: false });
  }

  // Decoders are pure: Date.now() and new Date() give the message's receive time, never the host clock, so
  // replaying the journal decodes every message as the first time (at load, before any message, they give 0).
  function Date(year, monthIndex, day, hours, minutes, seconds, ms) {
    if (new.target === undefined) {
      return new RealDate(nowMs).toString();
    }
    if (arguments.length === 0) {
      return new RealDate(nowMs);
    }
    return construct(RealDate, arguments, new.target);
  }
  Date.prototype = RealDate.prototype;
  defineProperty(Date, "prototype", { writable: false });
  hide(RealDate.prototype, "constructor", Date);
  hide(Date, "now", function now() {
    return nowMs;
  });
  hide(Date, "parse", RealDate.parse);
  hide(Date, "UTC", RealDate.UTC);
  hide(global, "Date", Date);

  // JSON has no NaN or Infinity (JSON.stringify writes null); a marker keeps them visible to the host, which
  // names the key. BigInt, which JSON.stringify refuses, becomes a number.
  function finite(value) {
    if (value !== value) return "\u0000NaN";
    if (value === 1 / 0) return "\u0000Infinity";
    if (value === -1 / 0) return "\u0000-Infinity";
    return value;
  }
  // The keys the codec set to undefined, which JSON drops: an example that expects one of them is told why it is
  // absent. Joined by NUL with string concatenation, which no codec can redefine.
  var undefinedKeys = "";
  function replacer(key, value) {
    if (value === undefined && key !== "") {
      if (undefinedKeys.length < 4096) undefinedKeys += key + "\u0000";
      return value;
    }
    if (typeof value === "number") return finite(value);
    if (typeof value === "bigint") return finite(toNumber(value));
    return value;
  }

  // Vendor codecs log while they are debugged; here their messages go nowhere.
  var console = {};
  function ignore() {}
  ["log", "info", "warn", "error", "debug", "trace"].forEach(function (name) {
    hide(console, name, ignore);
  });
  hide(global, "console", console);

  var host = create(null);
  host.input = function (bytes, fPort, recvMs) {
    nowMs = recvMs;
    return { bytes: bytes, fPort: fPort, recvTime: new RealDate(recvMs) };
  };
  // encodeDownlink's input (TS013): the data to encode, made in the codec's own context from its JSON text.
  host.encodeInput = function (dataJson, fPort) {
    return { data: jsonParse(dataJson), fPort: fPort };
  };
  host.stringify = function (value) {
    undefinedKeys = "";
    return jsonStringify(value, replacer);
  };
  host.undefinedKeys = function () {
    return undefinedKeys;
  };
  // Not writable, not configurable: a codec cannot replace the host's helpers.
  defineProperty(global, "__bydata", { value: freeze(host) });
})(globalThis);
