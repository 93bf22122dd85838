package ledger

// Topic names one of a ledger's two logs.
type Topic string

const (
	TopicFunds Topic = "funds"
	TopicFees  Topic = "fees"
)

// Topics lists both topics in their canonical order.
var Topics = []Topic{TopicFunds, TopicFees}

// ParseTopic checks a topic name.
func ParseTopic(s string) (Topic, error) {
	switch Topic(s) {
	case TopicFunds, TopicFees:
		return Topic(s), nil
	}
	return "", fieldErr("topic", "%q is not a topic (funds or fees)", s)
}

func (t Topic) code() byte {
	switch t {
	case TopicFunds:
		return 1
	case TopicFees:
		return 2
	}
	panic("ledger: unknown topic " + string(t))
}

func topicOfCode(c byte) (Topic, bool) {
	switch c {
	case 1:
		return TopicFunds, true
	case 2:
		return TopicFees, true
	}
	return "", false
}
