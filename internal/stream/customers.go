package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CustomersBucket caches requester e-mail → Jira accountId, so replicas
// and restarts share what they found or created, and a returning
// requester costs no Jira call.
const CustomersBucket = "FORMS_CUSTOMERS"

// CustomersConfig is KV bucket FORMS_CUSTOMERS: small, no TTL (an account
// does not change its id).
func CustomersConfig(c Config) jetstream.KeyValueConfig {
	return c.bucket(CustomersBucket, "Requester e-mail (hashed) → Jira accountId (JSM customer), found or created by ticketer")
}

// Customer is one cached account.
type Customer struct {
	Email     string `json:"email"`
	AccountID string `json:"account_id"`
	Created   bool   `json:"created,omitempty"` // created by ticketer (else found)
	// OffDesk: Jira refused to add the account to the service desk (the
	// bot is no service desk administrator); tried again later.
	OffDesk bool      `json:"off_desk,omitempty"`
	At      time.Time `json:"at"`
}

// Customers reads and writes FORMS_CUSTOMERS.
type Customers struct{ KV jetstream.KeyValue }

// customerKey: KV keys cannot hold '@' or '+'; the hash of the lower-case
// address is one.
func customerKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "email." + hex.EncodeToString(sum[:16])
}

// Get is the cached account of email (ok false: none).
func (c Customers) Get(ctx context.Context, email string) (Customer, bool, error) {
	e, err := c.KV.Get(ctx, customerKey(email))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Customer{}, false, nil
	}
	if err != nil {
		return Customer{}, false, fmt.Errorf("read %s: %w", CustomersBucket, err)
	}
	var cu Customer
	if err := json.Unmarshal(e.Value(), &cu); err != nil || cu.AccountID == "" {
		return Customer{}, false, nil // unreadable: find it again
	}
	return cu, true, nil
}

// Put caches cu.
func (c Customers) Put(ctx context.Context, cu Customer) error {
	b, err := json.Marshal(cu)
	if err != nil {
		return err
	}
	if _, err := c.KV.Put(ctx, customerKey(cu.Email), b); err != nil {
		return fmt.Errorf("write %s: %w", CustomersBucket, err)
	}
	return nil
}

// EnsureCustomers creates or updates KV bucket FORMS_CUSTOMERS (ticketer
// owns it).
func EnsureCustomers(ctx context.Context, js jetstream.JetStream, c Config) (Customers, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, CustomersConfig(c))
	if err != nil {
		return Customers{}, fmt.Errorf("create or update KV bucket %s: %w", CustomersBucket, err)
	}
	return Customers{KV: kv}, nil
}

// LookupCustomers is FORMS_CUSTOMERS for commands, which never create it.
func LookupCustomers(ctx context.Context, js jetstream.JetStream) (Customers, error) {
	kv, err := js.KeyValue(ctx, CustomersBucket)
	if err != nil {
		return Customers{}, fmt.Errorf("KV bucket %s (has the ticketer service run?): %w", CustomersBucket, err)
	}
	return Customers{KV: kv}, nil
}
