// An indoor climate sensor's uplink, written for bydata's tests (no vendor's format): on fPort 1 a sequence
// of records, each a type byte and a big-endian value whose size the type fixes.
//
//   0x01 temperature  int16, 0.1 °C       0x05 motion  uint8, movements counted since the last uplink
//   0x02 humidity     uint8, %RH          0x06 co2     uint16, ppm
//   0x04 light        uint16, lux         0x07 vdd     uint16, mV (reported in V)
//
// Example: 01 00e5 02 2d 04 012c 05 03 06 01c2 07 0bb8 → 22.9 °C, 45 %RH, 300 lx, 3 movements, 450 ppm, 3 V.
const LOW_BATTERY_V = 2.5;

function u8(bytes, i) {
  return bytes[i] & 0xff;
}

function u16(bytes, i) {
  return ((bytes[i] << 8) | bytes[i + 1]) & 0xffff;
}

function s16(bytes, i) {
  const value = u16(bytes, i);
  return value > 0x7fff ? value - 0x10000 : value;
}

const round = (x, decimals) => {
  const factor = Math.pow(10, decimals);
  return Math.round(x * factor) / factor;
};

const hex = (n) => "0x" + (n < 16 ? "0" : "") + n.toString(16);

const RECORDS = {
  0x01: { name: "temperature", size: 2, read: (b, i) => round(s16(b, i) / 10, 1) },
  0x02: { name: "humidity", size: 1, read: u8 },
  0x04: { name: "light", size: 2, read: u16 },
  0x05: { name: "motion", size: 1, read: u8 },
  0x06: { name: "co2", size: 2, read: u16 },
  0x07: { name: "vdd", size: 2, read: (b, i) => round(u16(b, i) / 1000, 3) },
};

function readRecords(bytes) {
  const data = {};
  const warnings = [];
  let i = 0;
  while (i < bytes.length) {
    const type = bytes[i];
    const record = RECORDS[type];
    if (!record) {
      return { errors: [`unknown record type ${hex(type)} at byte ${i}`] };
    }
    const left = bytes.length - i - 1;
    if (left < record.size) {
      return { errors: [`${record.name} at byte ${i} needs ${record.size} bytes, ${left} left`] };
    }
    if (data[record.name] !== undefined) {
      warnings.push(`${record.name} is given twice; the last value is kept`);
    }
    data[record.name] = record.read(bytes, i + 1);
    i += 1 + record.size;
  }
  return { data, warnings };
}

function decodeUplink(input) {
  if (input.fPort !== 1) {
    return { errors: [`unsupported fPort ${input.fPort}`] };
  }
  if (input.bytes.length === 0) {
    return { errors: ["empty payload"] };
  }
  const result = readRecords(input.bytes);
  if (result.errors) {
    return result;
  }
  const { data, warnings } = result;
  if (data.motion !== undefined) {
    data.occupied = data.motion > 0;
  }
  if (data.vdd !== undefined && data.vdd < LOW_BATTERY_V) {
    warnings.push(`battery low (${data.vdd} V)`);
  }
  if (data.humidity > 100) {
    warnings.push(`humidity ${data.humidity} % is out of range`);
  }
  return { data, warnings };
}
