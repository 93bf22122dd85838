package ledger

import "sync"

// calendars caches calendars by zone and cutoff: time.LoadLocation reads the
// zone database each time it is called.
var calendars sync.Map // zone + "|" + cutoff → Calendar

func calendarFor(zone, cutoff string) (Calendar, error) {
	key := zone + "|" + cutoff
	if c, ok := calendars.Load(key); ok {
		return c.(Calendar), nil
	}
	c, err := NewCalendar(zone, cutoff)
	if err != nil {
		return Calendar{}, err
	}
	calendars.Store(key, c)
	return c, nil
}
