package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
)

// Mosquitto's persistence file (mosquitto.db), as Mosquitto 2.0 writes it
// (src/persist_write.c, format version 6; version 5 is read the same way):
//
//	magic "\x00\xb5\x00mosquitto db" (15) | crc u32 (unused, 0) | version u32
//	chunks: type u32 | length u32 | body (length bytes)
//
// The header fields are big-endian; inside a chunk's body, dbid_t store ids
// are in the machine's byte order and the rest big-endian. Mosquitto writes
// it whole into mosquitto.db.new, fsyncs it and renames it over
// mosquitto.db. Mosquitto itself refuses a file whose last chunk is cut
// short ("Couldn't open database", every start) but reads a file cut in
// the middle of a chunk header as if it ended there, and an empty file as
// an empty state; checkDB refuses all of these.

var dbMagic = []byte{0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b'}

const (
	dbHeader = 15 + 4 + 4

	chunkCfg       = 1
	chunkMsgStore  = 2
	chunkClientMsg = 3
	chunkRetain    = 4
	chunkSub       = 5
	chunkClient    = 6

	msgStoreFixed  = 32 // struct PF_msg_store
	clientMsgFixed = 16 // struct PF_client_msg
	subFixed       = 12 // struct PF_sub
	clientFixedV5  = 16 // struct PF_client_v5
	clientFixedV6  = 24 // struct PF_client
	cfgFixed       = 10 // last_db_id, shutdown, dbid_size (16 with padding)
	retainFixed    = 8  // struct PF_retain

	directionOut = 1 // mosq_md_out: queued for delivery to the client
)

// dbSummary is what osgate needs of a saved state: the messages one
// client published that the bridge still has to deliver to the cloud.
type dbSummary struct {
	held []uint64 // messageHash of each, sorted
}

// holds reports whether the summary holds a message with this topic and
// payload.
func (s dbSummary) holds(topic string, payload []byte) bool {
	_, ok := slices.BinarySearch(s.held, messageHash(topic, payload))
	return ok
}

// hashSeed keys messageHash; the hashes never leave the process.
var hashSeed = maphash.MakeSeed()

// messageHash identifies a message by its topic and payload.
func messageHash(topic string, payload []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	h.WriteString(topic)
	h.WriteByte(0)
	h.Write(payload)
	return h.Sum64()
}

// checkDB returns why data is not a whole Mosquitto persistence file, or
// nil.
func checkDB(data []byte) error {
	_, err := readDB(data, "", "")
	return err
}

// readDB checks data and summarises the messages from clientID that the
// bridge's local client bridgeID still holds (none if either is empty).
// A damaged file has no summary.
func readDB(data []byte, clientID, bridgeID string) (dbSummary, error) {
	sum, err := walkDB(data, clientID, bridgeID)
	if err != nil {
		return dbSummary{}, err
	}
	return sum, nil
}

func walkDB(data []byte, clientID, bridgeID string) (dbSummary, error) {
	var sum dbSummary
	if len(data) == 0 {
		return sum, fmt.Errorf("the file is empty")
	}
	if len(data) < dbHeader {
		return sum, fmt.Errorf("the file is %d bytes, shorter than its header", len(data))
	}
	if !bytes.Equal(data[:15], dbMagic) {
		return sum, fmt.Errorf("the file does not start with Mosquitto's magic")
	}
	version := binary.BigEndian.Uint32(data[19:])
	if version != 5 && version != 6 {
		// Older formats (Mosquitto before 1.6) are Mosquitto's to read.
		return sum, nil
	}
	clientFixed := clientFixedV6
	if version == 5 {
		clientFixed = clientFixedV5
	}
	ours := map[uint64]uint64{} // store id -> messageHash, of clientID's messages
	off := dbHeader
	for off < len(data) {
		if len(data)-off < 8 {
			return sum, fmt.Errorf("the file ends inside a chunk header at offset %d", off)
		}
		typ := binary.BigEndian.Uint32(data[off:])
		n := int(binary.BigEndian.Uint32(data[off+4:]))
		if n > len(data)-off-8 {
			return sum, fmt.Errorf("chunk %d at offset %d is %d bytes, but the file ends after %d", typ, off, n, len(data)-off-8)
		}
		body := data[off+8 : off+8+n]
		bad := func(what string) error {
			return fmt.Errorf("chunk %d at offset %d (%d bytes): %s", typ, off, n, what)
		}
		switch typ {
		case chunkCfg:
			if n < cfgFixed {
				return sum, bad("too short")
			}
		case chunkMsgStore:
			if n < msgStoreFixed {
				return sum, bad("too short")
			}
			payloadLen := int(binary.BigEndian.Uint32(body[16:]))
			idLen := int(binary.BigEndian.Uint16(body[22:]))
			userLen := int(binary.BigEndian.Uint16(body[24:]))
			topicLen := int(binary.BigEndian.Uint16(body[26:]))
			if msgStoreFixed+idLen+userLen+topicLen+payloadLen > n {
				return sum, bad("its strings and payload overrun it")
			}
			if clientID != "" && string(body[msgStoreFixed:msgStoreFixed+idLen]) == clientID {
				p := msgStoreFixed + idLen + userLen
				topic := string(body[p : p+topicLen])
				ours[binary.NativeEndian.Uint64(body)] = messageHash(topic, body[p+topicLen:p+topicLen+payloadLen])
			}
		case chunkClientMsg:
			if n < clientMsgFixed {
				return sum, bad("too short")
			}
			idLen := int(binary.BigEndian.Uint16(body[10:]))
			if clientMsgFixed+idLen > n {
				return sum, bad("its client id overruns it")
			}
			if bridgeID != "" && body[15] == directionOut && string(body[clientMsgFixed:clientMsgFixed+idLen]) == bridgeID {
				if h, ok := ours[binary.NativeEndian.Uint64(body)]; ok {
					sum.held = append(sum.held, h)
				}
			}
		case chunkRetain:
			if n < retainFixed {
				return sum, bad("too short")
			}
		case chunkSub:
			if n < subFixed {
				return sum, bad("too short")
			}
			if subFixed+int(binary.BigEndian.Uint16(body[4:]))+int(binary.BigEndian.Uint16(body[6:])) > n {
				return sum, bad("its strings overrun it")
			}
		case chunkClient:
			if n < clientFixed {
				return sum, bad("too short")
			}
			idLen := int(binary.BigEndian.Uint16(body[14:]))
			userLen := 0
			if version == 6 {
				userLen = int(binary.BigEndian.Uint16(body[18:]))
			}
			if clientFixed+idLen+userLen > n {
				return sum, bad("its strings overrun it")
			}
		}
		off += 8 + n
	}
	slices.Sort(sum.held)
	return sum, nil
}
