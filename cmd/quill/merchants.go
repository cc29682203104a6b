package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/merchant"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
	"github.com/quillpay/quill/policy"
)

// openMerchants serves merchant profiles from the registry in Postgres
// through a cache that reloads every c.MerchantsRefresh (and once, paced,
// for an unknown id) until ctx ends, so every node sees an added, changed or
// disabled merchant within one refresh interval. A registry that cannot be
// read at start leaves the server not ready (merchants check) rather than
// failing it: the next reload may succeed.
func openMerchants(ctx context.Context, c config, log zerolog.Logger, now func() time.Time) (servedMerchants, func(), error) {
	reg, err := merchantpg.Open(ctx, c.PostgresDSN, 2)
	if err != nil {
		return servedMerchants{}, nil, err
	}
	mlog := log.With().Str("component", "merchants").Logger()
	var mu sync.Mutex
	failing := false
	cache := merchant.NewCache(reg, merchant.CacheOptions{
		RefreshEvery: c.MerchantsRefresh,
		Now:          now,
		OnRefresh: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && !failing:
				mlog.Warn().Err(err).Msg("merchant registry reload failing; serving the last good profiles")
			case err == nil && failing:
				mlog.Info().Msg("merchant registry reload recovered")
			}
			failing = err != nil
		},
	})
	if err := cache.Refresh(ctx); err != nil && !errors.Is(err, merchant.ErrUnavailable) {
		mlog.Error().Err(err).Msg("merchant registry holds an invalid profile")
	}
	go cache.Run(ctx)
	mlog.Info().Dur("refresh", c.MerchantsRefresh).Msg("merchant profiles served from postgres")
	return servedMerchants{cache}, reg.Close, nil
}

// servedMerchants is the directory the API reads: the cache, with "no
// profiles loaded" mapped to the 503 of the error table (policy.ErrUnavailable).
type servedMerchants struct{ *merchant.Cache }

func (s servedMerchants) Merchant(ctx context.Context, id string) (merchant.Profile, error) {
	p, err := s.Cache.Merchant(ctx, id)
	if errors.Is(err, merchant.ErrUnavailable) {
		return p, fmt.Errorf("%w: %w", policy.ErrUnavailable, err)
	}
	return p, err
}
