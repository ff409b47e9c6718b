# localstripe (the Stripe fake the tests use) as the Stripe upstream of the kind cluster tier.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install localstripe==1.15.10
USER 10001:10001
EXPOSE 8420
CMD ["localstripe", "--port", "8420"]
