// Cayenne LPP in JavaScript, written for bydata's benchmark and tests: channel byte, type byte, big-endian value.
// Values are named `${type}_${channel}`; multi-axis types are objects ({x, y, z}, {lat, lon, alt}).
function int(bytes, at, size, signed) {
  let value = 0;
  for (let k = 0; k < size; k++) {
    value = value * 256 + bytes[at + k];
  }
  const top = Math.pow(2, 8 * size);
  return signed && value >= top / 2 ? value - top : value;
}

const scalar = (name, size, signed, divisor) => ({
  name,
  size,
  read: (b, at) => int(b, at, size, signed) / divisor,
});

const axes = (name, axisNames, size, divisor) => ({
  name,
  size: size * axisNames.length,
  read: (b, at) => {
    const value = {};
    axisNames.forEach((axis, k) => {
      value[axis] = int(b, at + k * size, size, true) / divisor;
    });
    return value;
  },
});

const TYPES = {
  0: scalar("digital_input", 1, false, 1),
  1: scalar("digital_output", 1, false, 1),
  2: scalar("analog_input", 2, true, 100),
  3: scalar("analog_output", 2, true, 100),
  101: scalar("illuminance", 2, false, 1),
  102: scalar("presence", 1, false, 1),
  103: scalar("temperature", 2, true, 10),
  104: scalar("humidity", 1, false, 2),
  113: axes("accelerometer", ["x", "y", "z"], 2, 1000),
  115: scalar("barometer", 2, false, 10),
  116: scalar("voltage", 2, false, 100),
  125: scalar("concentration", 2, false, 1),
  134: axes("gyrometer", ["x", "y", "z"], 2, 100),
};

function decodeUplink(input) {
  const bytes = input.bytes;
  const data = {};
  let i = 0;
  while (i < bytes.length) {
    if (i + 2 > bytes.length) {
      return { errors: [`record at byte ${i} has no type`] };
    }
    const channel = bytes[i];
    const type = TYPES[bytes[i + 1]];
    if (type === undefined) {
      return { errors: [`unknown type ${bytes[i + 1]} at byte ${i + 1}`] };
    }
    if (i + 2 + type.size > bytes.length) {
      return { errors: [`${type.name} on channel ${channel} is cut short`] };
    }
    data[`${type.name}_${channel}`] = type.read(bytes, i + 2);
    i += 2 + type.size;
  }
  return { data, warnings: [] };
}
