-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as
-- POSTGRES_USER. Services own their data: one database per service, none reads another's.
CREATE DATABASE ambito_gateway;
CREATE DATABASE ambito_intake;
CREATE DATABASE ambito_vouchers;
CREATE DATABASE ambito_documents;
