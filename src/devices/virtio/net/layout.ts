/**
 * virtio-net binary layouts (VIRTIO 1.x §5.1): feature bits, the config space and the header
 * before every frame in both directions (struct virtio_net_hdr, §5.1.6; with VERSION_1 it always
 * has num_buffers, so it is 12 bytes). All fields little-endian.
 */

/** Device feature bits (§5.1.3), all in the low word. */
export const NetFeature = {
  CSUM: 1 << 0,
  GUEST_CSUM: 1 << 1,
  MAC: 1 << 5,
  GUEST_TSO4: 1 << 7,
  GUEST_TSO6: 1 << 8,
  GUEST_UFO: 1 << 10,
  HOST_TSO4: 1 << 11,
  HOST_TSO6: 1 << 12,
  HOST_UFO: 1 << 14,
  MRG_RXBUF: 1 << 15,
  STATUS: 1 << 16,
} as const;

/** struct virtio_net_config (§5.1.4): what this device exposes of it. */
export const enum NetConfig {
  MAC = 0, // u8[6]
  STATUS = 6, // le16
  SIZE = 8,
}

/** virtio_net_config.status bits. */
export const NET_S_LINK_UP = 1;

/** struct virtio_net_hdr (§5.1.6). */
export const enum NetHdr {
  FLAGS = 0, // u8
  GSO_TYPE = 1, // u8
  HDR_LEN = 2, // le16
  GSO_SIZE = 4, // le16
  CSUM_START = 6, // le16
  CSUM_OFFSET = 8, // le16
  NUM_BUFFERS = 10, // le16
  SIZE = 12,
}

export const HDR_F_NEEDS_CSUM = 1;
export const HDR_F_DATA_VALID = 2;
/** gso_type's ECN bit (only with HOST_ECN / GUEST_ECN, which are not offered). */
export const GSO_ECN = 0x80;

/** Largest frame either way: a 64 KiB GSO payload behind its Ethernet, IP and TCP headers. */
export const MAX_FRAME = 65_550;
