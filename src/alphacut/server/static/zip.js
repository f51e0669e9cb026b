// A small ZIP writer: STORE method (no compression: PNG, WebP and JPEG are compressed already),
// CRC-32, UTF-8 names. Layout: a local header + data per file, then the central directory,
// then the end-of-central-directory record. No ZIP64, so each file and the archive stay < 4 GiB.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as ZIP uses it) of a Uint8Array. */
export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** MS-DOS time and date words (2-second resolution, years from 1980). */
function dosDateTime(d) {
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const year = Math.max(d.getFullYear(), 1980) - 1980;
  const date = (year << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  return { time, date };
}

const UTF8_FLAG = 0x0800; // general purpose bit 11: the name is UTF-8
const VERSION = 20; // 2.0, enough for stored files

/**
 * Build a ZIP archive.
 * @param {{name: string, data: Uint8Array}[]} entries files in archive order
 * @param {Date} [when] modification time written for every entry
 * @returns {Blob} application/zip
 */
export function makeZip(entries, when = new Date()) {
  const { time, date } = dosDateTime(when);
  const encoder = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;

  for (const { name, data } of entries) {
    if (data.length >= 0xffffffff) throw new Error(`${name} is too large for a ZIP without ZIP64`);
    const nameBytes = encoder.encode(name);
    const crc = crc32(data);

    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); // local file header signature
    local.setUint16(4, VERSION, true); // version needed to extract
    local.setUint16(6, UTF8_FLAG, true);
    local.setUint16(8, 0, true); // method 0 = STORE
    local.setUint16(10, time, true);
    local.setUint16(12, date, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true); // compressed size
    local.setUint32(22, data.length, true); // uncompressed size
    local.setUint16(26, nameBytes.length, true);
    local.setUint16(28, 0, true); // extra field length
    parts.push(local, nameBytes, data);

    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true); // central directory header signature
    entry.setUint16(4, VERSION, true); // version made by
    entry.setUint16(6, VERSION, true); // version needed to extract
    entry.setUint16(8, UTF8_FLAG, true);
    entry.setUint16(10, 0, true);
    entry.setUint16(12, time, true);
    entry.setUint16(14, date, true);
    entry.setUint32(16, crc, true);
    entry.setUint32(20, data.length, true);
    entry.setUint32(24, data.length, true);
    entry.setUint16(28, nameBytes.length, true);
    // 30: extra length, 32: comment length, 34: disk number, 36: internal attrs,
    // 38: external attrs - all zero.
    entry.setUint32(42, offset, true); // offset of the local header
    central.push(entry, nameBytes);

    offset += 30 + nameBytes.length + data.length;
  }

  const centralSize = central.reduce((sum, part) => sum + part.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); // end of central directory signature
  end.setUint16(8, entries.length, true); // entries on this disk
  end.setUint16(10, entries.length, true); // entries in total
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true); // where the central directory starts
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
