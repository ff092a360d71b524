/**
 * NATS headers of cluster mode. On journal messages (stored in the site's stream):
 *   Apb-Seq    "<s>-<e>"   the journal seqs the message holds (the stream's own seq counts messages)
 *   Apb-Epoch  "<n>"       the publisher's lease epoch
 *   Apb-Node   "<name>"    the publisher
 *   Apb-Fence  "<n>"       (no payload) a new leader's first message: it ends every older epoch
 * On forwarded frames (request/reply, not stored): the controller, and the leader's refusal.
 */
export const H_SEQ = 'Apb-Seq';
export const H_EPOCH = 'Apb-Epoch';
export const H_NODE = 'Apb-Node';
export const H_FENCE = 'Apb-Fence';
export const H_CONTROLLER = 'Apb-Controller';
export const H_ERROR = 'Apb-Error';
