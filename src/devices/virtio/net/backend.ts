/**
 * What virtio-net needs from a network backend (user-mode NAT, a switch port, TAP), defined here
 * so that the device never imports src/net (which implements it).
 *
 * Frames are Ethernet frames without the virtio-net header; the header's offload meaning travels
 * beside them in a FrameMeta (VIRTIO 1.x §5.1.6 "Device Operation"). A backend that cannot use
 * offloaded frames finalises them (src/net/offload.ts: checksums, segmentation) itself.
 * Frames and metas are only valid during the call: copy what you keep (no allocation per frame
 * on either side; both reuse scratch objects).
 */

/** virtio_net_hdr.gso_type (§5.1.6): how a large frame is to be cut. */
export const enum Gso { NONE = 0, TCPV4 = 1, UDP = 3, TCPV6 = 4 }

export interface FrameMeta {
  /** VIRTIO_NET_HDR_F_NEEDS_CSUM: the L4 checksum is partial; the one's-complement sum of bytes from csumStart to the end goes at csumStart + csumOffset. */
  needsCsum: boolean;
  csumStart: number;
  csumOffset: number;
  /** VIRTIO_NET_HDR_F_DATA_VALID (towards the guest): the checksums are known good, the guest need not check them. */
  dataValid: boolean;
  /** A GSO frame: one large TCP/UDP segment whose payload is cut into gsoSize pieces, each behind a copy of the first hdrLen bytes. */
  gso: Gso;
  gsoSize: number;
  hdrLen: number;
}

export const plainFrame = (): FrameMeta => ({ needsCsum: false, csumStart: 0, csumOffset: 0, dataValid: false, gso: Gso.NONE, gsoSize: 0, hdrLen: 0 });

/** What the guest's driver accepted, so a backend can send it large or unchecksummed frames. */
export interface GuestOffloads {
  /** VIRTIO_NET_F_GUEST_CSUM: frames may carry needsCsum / dataValid. */
  csum: boolean;
  /** VIRTIO_NET_F_GUEST_TSO4 / _TSO6 / _UFO: GSO frames of that kind may be delivered. */
  tso4: boolean;
  tso6: boolean;
  /** Largest frame the guest takes (mergeable RX buffers: 65550 with the header; otherwise its buffer size). */
  maxFrame: number;
}

/** The device side of a NIC, as a backend sees it. */
export interface NicPort {
  /** The NIC's MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** Hands a frame to the guest. False when the guest has no receive buffers now: keep it (or drop it, counted) and wait for onRxSpace. */
  deliver(frame: Uint8Array, meta: FrameMeta): boolean;
  /** What the guest accepts; changes when the driver (re)negotiates. */
  readonly offloads: GuestOffloads;
  /** Called when the guest has posted receive buffers after deliver() returned false. */
  onRxSpace: (() => void) | undefined;
  /** Whether the guest's driver is up (DRIVER_OK) and the link is up. */
  readonly linkUp: boolean;
}

/** A network backend: frames from the guest go in through send(). */
export interface NetBackend {
  /** Short description for logs and inspect ("user 10.0.2.0/24", "tap0"). */
  readonly description: string;
  /** Connects the NIC; called once before any send(). */
  attach(port: NicPort): void;
  /** A frame the guest transmitted. */
  send(frame: Uint8Array, meta: FrameMeta): void;
  /** Counters for inspect and /metrics. */
  stats(): Record<string, number>;
  /** Closes host sockets and timers; the VM is ending. */
  close(): void;
}
