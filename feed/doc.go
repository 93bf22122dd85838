// Package feed is the read side of the ledger: opaque, MAC'd cursors bound
// to the path they came from; feed pages (append order, tryLater at the end
// of the log); date-report pages (hasMore, tryLater while the date is
// open); and following a log as it grows (long poll, push stream), woken by
// the store's commit notifications. It knows nothing of HTTP or gRPC.
package feed
