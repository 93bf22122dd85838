package ledger

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Every bucket of the data file, created together in Open.
var (
	bucketMeta     = []byte("meta")     // "schema" → version
	bucketLedgers  = []byte("ledgers")  // ledgerID → JSON ledgerRecord
	bucketEntries  = []byte("entries")  // num|topic|seq → encoded entry (see codec.go)
	bucketEntryIDs = []byte("entryIds") // num|topic|entryID → seq
	bucketDates    = []byte("dates")    // num|topic|date → first seq | last seq
	bucketRefs     = []byte("refs")     // num|topic|len|reference|seq → nil
	bucketPSPRefs  = []byte("pspRefs")  // num|topic|len|pspReference|seq → nil
	bucketTimes    = []byte("times")    // num|topic|time µs|seq → nil
	bucketGDPR     = []byte("gdpr")     // num|topic|seq → key slot | nonce | sealed GDPR fields
	bucketClients  = []byte("clients")  // clientID → JSON Client
	bucketAudit    = []byte("audit")    // seq → JSON AuditEvent
	bucketSeals    = []byte("seals")    // num|date → JSON sealRecord (seals.go), written once
	bucketCloses   = []byte("closes")   // num|open date → µs when the open date moved to it (closes.go)

	// Records of package report (reportjobs.go): key → opaque value.
	bucketReportFiles     = []byte("reportFiles")
	bucketReportSchedules = []byte("reportSchedules")
	bucketReportTokens    = []byte("reportTokens")
	bucketReportRuns      = []byte("reportRuns")

	allBuckets = [][]byte{bucketMeta, bucketLedgers, bucketEntries, bucketEntryIDs,
		bucketDates, bucketRefs, bucketPSPRefs, bucketTimes, bucketGDPR, bucketClients, bucketAudit,
		bucketReportFiles, bucketReportSchedules, bucketReportTokens, bucketReportRuns,
		bucketSeals, bucketCloses}

	// filled buckets are written with a high fill percent: most of their
	// rows are appended at the end of a (ledger, topic) range, and a random
	// insert dirties its leaf whatever the fill, so fuller leaves mean fewer
	// pages to write.
	filled = [][]byte{bucketEntries, bucketEntryIDs, bucketDates, bucketRefs, bucketPSPRefs, bucketTimes, bucketGDPR, bucketAudit}
)

const schemaVersion = 1

// prefixLen is the length of the num|topic prefix shared by every per-topic key.
const prefixLen = 5

func topicPrefix(num uint32, t Topic) []byte {
	k := make([]byte, prefixLen, 32)
	binary.BigEndian.PutUint32(k, num)
	k[4] = t.code()
	return k
}

func seqKey(num uint32, t Topic, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(topicPrefix(num, t), seq)
}

func entryIDKey(num uint32, t Topic, entryID string) []byte {
	return append(topicPrefix(num, t), entryID...)
}

func dateKey(num uint32, t Topic, d Date) []byte {
	return binary.BigEndian.AppendUint32(topicPrefix(num, t), uint32(d))
}

// refPrefix is the key prefix of every index row for one reference string;
// the length prefix keeps "ab" from matching "abc".
func refPrefix(num uint32, t Topic, ref string) []byte {
	k := binary.BigEndian.AppendUint16(topicPrefix(num, t), uint16(len(ref)))
	return append(k, ref...)
}

func refKey(num uint32, t Topic, ref string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(refPrefix(num, t, ref), seq)
}

// timeKey orders by time: the µs count is stored with its sign bit flipped.
func timeKey(num uint32, t Topic, micros int64, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(topicPrefix(num, t), uint64(micros)^(1<<63))
	return binary.BigEndian.AppendUint64(k, seq)
}

func itob(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// createBuckets makes every bucket that does not exist yet.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// setFill sets the fill percent of the per-topic buckets for this write tx.
func setFill(tx *bolt.Tx) {
	for _, name := range filled {
		tx.Bucket(name).FillPercent = 0.9
	}
}
