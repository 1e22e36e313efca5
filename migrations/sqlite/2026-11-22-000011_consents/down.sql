DROP TABLE sandbox_sca_sessions;
DROP TABLE consent_steps;
DROP TABLE consent_invitations;
DROP TABLE consents;
DROP TABLE consent_accounts;
DROP TABLE consent_settings;
