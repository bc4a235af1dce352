# AWS -> Google without a key: a workload identity pool whose AWS provider accepts signed GetCallerIdentity requests
# from one AWS account, admits only the sessions of one role, and lets only that role impersonate one service account.

locals {
  # arn:aws:iam::ACCOUNT:role/[PATH/]NAME -> the account, and the ARN its sessions have: an assumed-role ARN names the
  # role without its path, arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION (on Lambda the session is the function name).
  aws_account_id   = split(":", var.aws_role_arn)[4]
  aws_role_name    = regex("[^/]+$", var.aws_role_arn)
  assumed_role_arn = "arn:aws:sts::${local.aws_account_id}:assumed-role/${local.aws_role_name}"

  service_account_email = regex("[^/]+$", var.service_account)

  # Google's default mapping for AWS providers, plus the account: attribute.aws_role is the session's role, without
  # the session name, so one principalSet names every session of the role.
  attribute_mapping = {
    "google.subject"     = "assertion.arn"
    "attribute.aws_role" = "assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn"
    "attribute.account"  = "assertion.account"
  }
}

resource "google_iam_workload_identity_pool" "this" {
  project                   = var.project
  workload_identity_pool_id = var.pool_id
  display_name              = "dag-trigger from AWS"
  description               = "AWS workloads of account ${local.aws_account_id} that trigger Airflow DAGs (dag-trigger)"
}

# Google STS accepts an AWS identity here only from this account (aws.account_id), and of those only the sessions of
# the one role (attribute_condition): any other role of the account is refused before any IAM binding is looked at.
resource "google_iam_workload_identity_pool_provider" "aws" {
  # checkov:skip=CKV_GCP_125:That check is for GitHub Actions OIDC providers and fails any provider without an oidc block (checkov 3.3.30 indexes conf["oidc"] and counts the error as a failure). This is an AWS provider, restricted by aws.account_id and an attribute_condition admitting one role.
  project                            = var.project
  workload_identity_pool_id          = google_iam_workload_identity_pool.this.workload_identity_pool_id
  workload_identity_pool_provider_id = var.provider_id
  display_name                       = "AWS ${local.aws_account_id}"
  description                        = "Sessions of ${var.aws_role_arn} (dag-trigger)"
  attribute_mapping                  = local.attribute_mapping
  attribute_condition                = "attribute.aws_role == '${local.assumed_role_arn}'"

  aws {
    account_id = local.aws_account_id
  }
}

# The role's sessions, and nothing else in the pool, may impersonate the service account (generateAccessToken).
resource "google_service_account_iam_member" "workload_identity_user" {
  service_account_id = var.service_account
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.this.name}/attribute.aws_role/${local.assumed_role_arn}"
}

# auth_mode iap: the code mints IAP's ID token with IAM Credentials generateIdToken, called with the impersonated
# account's own access token, so the account needs iam.serviceAccounts.getOpenIdToken on itself. On itself it adds no
# identity the account does not already have.
resource "google_service_account_iam_member" "self_id_token_creator" {
  count = var.auth_mode == "iap" ? 1 : 0

  service_account_id = var.service_account
  role               = "roles/iam.serviceAccountOpenIdTokenCreator"
  member             = "serviceAccount:${local.service_account_email}"
}

# auth_mode iap_jwt: the code has IAM Credentials signJwt sign IAP's JWT for the account, with the account's own access
# token: iam.serviceAccounts.signJwt on itself. No predefined role is narrower.
resource "google_service_account_iam_member" "self_token_creator" {
  count = var.auth_mode == "iap_jwt" ? 1 : 0

  service_account_id = var.service_account
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.service_account_email}"
}
